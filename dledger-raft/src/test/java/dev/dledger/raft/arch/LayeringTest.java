package dev.dledger.raft.arch;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.EvaluationResult;
import org.junit.jupiter.api.Test;

/**
 * Keeps the layers of DESIGN.md true. Each rule also runs against deliberately bad classes in
 * {@code dev.dledger.raft.arch.fixture}, so a rule that silently matches nothing fails here too.
 */
class LayeringTest {

    private static final JavaClasses PRODUCTION = new ClassFileImporter()
        .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages("dev.dledger.raft");

    private static final JavaClasses FIXTURES = new ClassFileImporter()
        .importPackages("dev.dledger.raft.arch.fixture");

    @Test
    void coreUsesNoIoThreadsClocksOrLogging() {
        assertTrue(PRODUCTION.contain("dev.dledger.raft.core.RaftNode"), "the core was not imported");
        LayeringRules.coreIsPure(LayeringRules.CORE).allowEmptyShould(false).check(PRODUCTION);
    }

    @Test
    void coreDependsOnNothingElseOfOurs() {
        LayeringRules.coreStandsAlone(LayeringRules.CORE).allowEmptyShould(false).check(PRODUCTION);
    }

    @Test
    void storeAndTransportDoNotReachIntoTheDriver() {
        LayeringRules.adaptersDoNotReachTheDriver().allowEmptyShould(false).check(PRODUCTION);
    }

    @Test
    void purityRuleCatchesEachForbiddenUse() {
        EvaluationResult r = LayeringRules.coreIsPure("dev.dledger.raft.arch.fixture..").evaluate(FIXTURES);
        assertTrue(r.hasViolation());
        String report = String.join("\n", r.getFailureReport().getDetails());
        for (String forbidden : new String[] {"java.io.File", "java.lang.Thread", "System.currentTimeMillis",
            "System.nanoTime", "java.util.concurrent.locks.ReentrantLock", "org.slf4j.Logger", "java.util.Random"}) {
            assertTrue(report.contains(forbidden), "not reported: " + forbidden + "\n" + report);
        }
        assertFalse(report.contains("CleanCoreClass"), report);
    }
}
