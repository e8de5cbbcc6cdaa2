package dev.dledger.raft.arch;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaCall;
import com.tngtech.archunit.lang.ArchRule;

/** The layering of {@code dev.dledger.raft} as ArchUnit rules (DESIGN.md section 2, STYLE.md section 2). */
final class LayeringRules {

    static final String CORE = "dev.dledger.raft.core..";

    private LayeringRules() {
    }

    /** The core is a pure function of its inputs: no I/O, threads, executors, locks, clocks or logging frameworks. */
    static ArchRule coreIsPure(String corePackage) {
        return noClasses().that().resideInAPackage(corePackage)
            .should().dependOnClassesThat().resideInAnyPackage("java.io..", "java.net..", "java.nio.channels..",
                "java.nio.file..", "java.util.concurrent..", "java.util.logging..", "io.netty..", "org.slf4j..",
                "org.apache.logging..", "java.lang.management..")
            .orShould().dependOnClassesThat().haveFullyQualifiedName("java.lang.Thread")
            .orShould().dependOnClassesThat().haveFullyQualifiedName("java.util.Random")
            .orShould().dependOnClassesThat().haveFullyQualifiedName("java.util.UUID")
            .orShould().dependOnClassesThat().haveFullyQualifiedName("java.time.Clock")
            .orShould().dependOnClassesThat().haveFullyQualifiedName("java.time.Instant")
            .orShould().callMethodWhere(clockRead())
            .because("the core must be deterministic: the same state and inputs give the same outputs");
    }

    /** The core depends on nothing else of ours. */
    static ArchRule coreStandsAlone(String corePackage) {
        return noClasses().that().resideInAPackage(corePackage)
            .should().dependOnClassesThat().resideInAnyPackage("dev.dledger.raft.store..",
                "dev.dledger.raft.transport..", "dev.dledger.raft.server..", "dev.dledger.raft.client..",
                "dev.dledger.raft.statemachine..", "dev.dledger.raft.cli..");
    }

    /** Storage and transport are adapters under the driver: they never reach into it. */
    static ArchRule adaptersDoNotReachTheDriver() {
        return noClasses().that().resideInAnyPackage("dev.dledger.raft.store..", "dev.dledger.raft.transport..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.dledger.raft.server..", "dev.dledger.raft.cli..");
    }

    private static DescribedPredicate<JavaCall<?>> clockRead() {
        return DescribedPredicate.describe("a read of the wall clock or of System.nanoTime",
            call -> call.getTargetOwner().isEquivalentTo(System.class)
                && (call.getName().equals("currentTimeMillis") || call.getName().equals("nanoTime")));
    }
}
