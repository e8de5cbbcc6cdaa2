package dev.dledger.raft.cli;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The config file key of a typed {@code dledger server} option (a field of {@link ServerCommand.Base} that also carries
 * picocli's {@code @Option}): the one place that says which key the flag overrides, its default as written in the
 * file, and what it sets with its unit. {@link ServerConfig#KEYS} is read from these annotations, so a flag and its
 * key cannot drift apart; the field's type is the key's type, and a file value is converted by the same
 * {@link SettingConverters converter} as the flag.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.FIELD)
@interface ConfigKey {

    /** The key in the properties file. */
    String name();

    /** The default, as written in the file (or a phrase saying who decides). */
    String defaultValue();

    /** What the key sets, with its unit. */
    String description();
}
