package dev.dledger.raft.arch;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaMethodCall;
import com.tngtech.archunit.lang.ArchRule;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.InstantSource;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.UUID;

/**
 * The layering rules of STYLE.md section 2, for a tree of packages under {@code root} ({@code dev.dledger.raft} in
 * production). They take the root as a parameter so that the same rules can be run against deliberately bad fixture
 * classes (package {@code dev.dledger.raft.arch.violations}) to prove that each rule fires.
 *
 * <p>Every rule refuses to pass when it selects no class ({@code allowEmptyShould(false)}).
 */
final class PackageLayeringRules {

    private PackageLayeringRules() {
    }

    /** The core reads no file, socket or channel, and writes nothing to the console. */
    static ArchRule coreDoesNoIo(String root) {
        return noClasses().that().resideInAPackage(core(root))
            .should().dependOnClassesThat().resideInAnyPackage("java.io..", "java.net..", "java.nio.channels..",
                "java.nio.file..")
            .orShould().accessField(System.class, "out")
            .orShould().accessField(System.class, "err")
            .orShould().accessField(System.class, "in")
            .because("the core is a pure function of its inputs; the driver owns all I/O (STYLE.md 1, 3)")
            .allowEmptyShould(false);
    }

    /** The core owns no thread, executor, lock or atomic. */
    static ArchRule coreOwnsNoThreads(String root) {
        return noClasses().that().resideInAPackage(core(root))
            .should().dependOnClassesThat().resideInAPackage("java.util.concurrent..")
            .orShould().dependOnClassesThat().belongToAnyOf(Thread.class, ThreadGroup.class, ThreadLocal.class,
                InheritableThreadLocal.class, Runnable.class, Runtime.class)
            .because("only the driver owns threads and queues; the core is called from one thread at a time")
            .allowEmptyShould(false);
    }

    /** The core reads no clock: time comes in as ticks. */
    static ArchRule coreReadsNoClock(String root) {
        DescribedPredicate<JavaMethodCall> javaTimeNow = DescribedPredicate.describe("a now() of java.time",
            call -> call.getTargetOwner().getPackageName().equals("java.time") && call.getName().equals("now"));
        return noClasses().that().resideInAPackage(core(root))
            .should().callMethod(System.class, "currentTimeMillis")
            .orShould().callMethod(System.class, "nanoTime")
            .orShould().callMethodWhere(javaTimeNow)
            .orShould().dependOnClassesThat().belongToAnyOf(Clock.class, InstantSource.class)
            .because("the core counts ticks; only the driver converts milliseconds (STYLE.md 3)")
            .allowEmptyShould(false);
    }

    /** The core draws randomness only from its injected RandomSource. */
    static ArchRule coreUsesOnlyItsRandomSource(String root) {
        return noClasses().that().resideInAPackage(core(root))
            .should().dependOnClassesThat().belongToAnyOf(Random.class, SecureRandom.class, SplittableRandom.class)
            .orShould().callMethod(Math.class, "random")
            .orShould().callMethod(UUID.class, "randomUUID")
            .because("every run must replay from its seed; jitter comes from the injected RandomSource")
            .allowEmptyShould(false);
    }

    /** The core uses no transport or logging library; it logs through its injected CoreLog. */
    static ArchRule coreUsesNoNettyOrLogging(String root) {
        return noClasses().that().resideInAPackage(core(root))
            .should().dependOnClassesThat().resideInAnyPackage("io.netty..", "org.slf4j..", "java.util.logging..",
                "org.apache.logging..", "org.apache.log4j..", "ch.qos.logback..")
            .because("the core uses only the JDK and logs through CoreLog (STYLE.md 1, 9)")
            .allowEmptyShould(false);
    }

    /** The core depends on no other package of the project: dependencies point toward the core only. */
    static ArchRule coreDependsOnNoOtherProjectPackage(String root) {
        return noClasses().that().resideInAPackage(core(root))
            .should().dependOnClassesThat(resideInAPackage(root + "..").and(DescribedPredicate.not(
                resideInAPackage(core(root)))))
            .because("dependencies only point toward the core (STYLE.md 2)")
            .allowEmptyShould(false);
    }

    /** The core depends on the JDK and on itself, nothing else. */
    static ArchRule coreUsesOnlyTheJdk(String root) {
        return classes().that().resideInAPackage(core(root))
            .should().onlyDependOnClassesThat().resideInAnyPackage(core(root), "java..")
            .because("the core uses only the JDK (STYLE.md 1)")
            .allowEmptyShould(false);
    }

    /** The store and the transport are adapters below the server: they never reach into it. */
    static ArchRule adaptersDoNotReachIntoTheServer(String root) {
        return noClasses().that().resideInAnyPackage(root + ".store..", root + ".transport..")
            .should().dependOnClassesThat().resideInAPackage(root + ".server..")
            .because("storage and transport never call back into the driver (STYLE.md 2, 3)")
            .allowEmptyShould(false);
    }

    /**
     * The library packages never depend on the command line: {@code cli} sits on top (a tool around the library), and
     * what other modules need from it (the peer list parser, {@code config}) lives below it.
     */
    static ArchRule libraryDoesNotReachIntoTheCli(String root) {
        return noClasses().that().resideInAnyPackage(root + ".core..", root + ".store..", root + ".transport..",
                root + ".server..", root + ".client..", root + ".statemachine..", root + ".config..")
            .should().dependOnClassesThat().resideInAPackage(root + ".cli..")
            .because("the command line is a tool on top of the library; nothing below it imports it")
            .allowEmptyShould(false);
    }

    /** Every rule above, for {@code root}. */
    static List<ArchRule> all(String root) {
        return List.of(coreDoesNoIo(root), coreOwnsNoThreads(root), coreReadsNoClock(root),
            coreUsesOnlyItsRandomSource(root), coreUsesNoNettyOrLogging(root), coreDependsOnNoOtherProjectPackage(root),
            coreUsesOnlyTheJdk(root), adaptersDoNotReachIntoTheServer(root), libraryDoesNotReachIntoTheCli(root));
    }

    private static String core(String root) {
        return root + ".core..";
    }
}
