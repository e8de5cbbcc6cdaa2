package dev.dledger.distribution;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.Test;

/**
 * The modules built on dledger-raft (the commit log, the migration tool, this package's demos) use its library
 * packages, never its command line ({@code dev.dledger.raft.cli}): the command line is a tool on top of the library,
 * free to change its options and classes. This module sees every other module's production classes on its class
 * path, so the rule runs here.
 */
class ModuleLayeringTest {

    private static final String[] OTHER_MODULES = {"dev.dledger.rocketmq..", "dev.dledger.migration..",
        "dev.dledger.distribution.."};

    @Test
    void modulesOutsideTheLibraryDoNotImportItsCommandLine() {
        JavaClasses production = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("dev.dledger");
        // A positive control: every module's classes are there, so the rule below cannot pass on an empty set.
        for (String module : new String[] {"dev.dledger.rocketmq.RaftStoreSettings",
            "dev.dledger.migration.Converter", "dev.dledger.distribution.FailoverDemo",
            "dev.dledger.raft.cli.DledgerCommand"}) {
            assertTrue(production.contain(module), module + " is not among the imported production classes");
        }
        ArchRule rule = noClasses().that().resideInAnyPackage(OTHER_MODULES)
            .should().dependOnClassesThat().resideInAPackage("dev.dledger.raft.cli..")
            .because("the command line is a tool on top of the library; what other modules need lives below it")
            .allowEmptyShould(false);
        rule.check(production);
    }
}
