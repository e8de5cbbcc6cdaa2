package dev.dledger.raft.arch;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.EvaluationResult;
import dev.dledger.raft.core.RaftNode;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The layering of STYLE.md section 2, enforced on the production classes. Each rule is also run against deliberately
 * bad fixture classes (test-only, package {@code dev.dledger.raft.arch.violations}) and must flag exactly the
 * offenders there, so a rule that silently stopped matching would fail this test too.
 */
class PackageLayeringTest {

    private static final String ROOT = "dev.dledger.raft";
    private static final String FIXTURES = "dev.dledger.raft.arch.violations";

    private static JavaClasses production;
    private static JavaClasses fixtures;

    @BeforeAll
    static void importClasses() {
        production = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages(ROOT);
        fixtures = new ClassFileImporter().importPackages(FIXTURES);
    }

    @Test
    void productionImportHoldsTheCoreAndTheAdaptersButNoTestClass() {
        assertTrue(production.contain(RaftNode.class));
        long coreClasses = production.stream().filter(c -> c.getPackageName().equals(ROOT + ".core")).count();
        assertTrue(coreClasses >= 20, "core classes imported: " + coreClasses);
        assertTrue(production.stream().anyMatch(c -> c.getPackageName().startsWith(ROOT + ".transport")));
        assertTrue(production.stream().noneMatch(c -> c.getPackageName().startsWith(FIXTURES)));
        assertTrue(production.stream().map(JavaClass::getSimpleName).noneMatch(n -> n.endsWith("Test")));
    }

    @Test
    void coreDoesNoIo() {
        verify(PackageLayeringRules.coreDoesNoIo(ROOT), PackageLayeringRules.coreDoesNoIo(FIXTURES),
            "ImpureCore$FileUse", "ImpureCore$PathUse", "ImpureCore$SocketUse", "ImpureCore$ChannelUse",
            "ImpureCore$ConsoleUse");
    }

    @Test
    void coreOwnsNoThreads() {
        verify(PackageLayeringRules.coreOwnsNoThreads(ROOT), PackageLayeringRules.coreOwnsNoThreads(FIXTURES),
            "ImpureCore$ExecutorUse", "ImpureCore$LockUse", "ImpureCore$AtomicUse", "ImpureCore$ThreadUse",
            "ImpureCore$RunnableUse");
    }

    @Test
    void coreReadsNoClock() {
        verify(PackageLayeringRules.coreReadsNoClock(ROOT), PackageLayeringRules.coreReadsNoClock(FIXTURES),
            "ImpureCore$WallClockUse", "ImpureCore$NanoClockUse", "ImpureCore$InstantUse");
    }

    @Test
    void coreUsesOnlyItsRandomSource() {
        verify(PackageLayeringRules.coreUsesOnlyItsRandomSource(ROOT),
            PackageLayeringRules.coreUsesOnlyItsRandomSource(FIXTURES),
            "ImpureCore$RandomUse", "ImpureCore$MathRandomUse", "ImpureCore$UuidUse");
    }

    @Test
    void coreUsesNoNettyOrLogging() {
        verify(PackageLayeringRules.coreUsesNoNettyOrLogging(ROOT),
            PackageLayeringRules.coreUsesNoNettyOrLogging(FIXTURES),
            "ImpureCore$NettyUse", "ImpureCore$Slf4jUse", "ImpureCore$JulUse");
    }

    @Test
    void coreDependsOnNoOtherProjectPackage() {
        verify(PackageLayeringRules.coreDependsOnNoOtherProjectPackage(ROOT),
            PackageLayeringRules.coreDependsOnNoOtherProjectPackage(FIXTURES), "ImpureCore$ServerAware");
    }

    @Test
    void coreUsesOnlyTheJdk() {
        verify(PackageLayeringRules.coreUsesOnlyTheJdk(ROOT), PackageLayeringRules.coreUsesOnlyTheJdk(FIXTURES),
            "ImpureCore$NettyUse", "ImpureCore$Slf4jUse", "ImpureCore$ServerAware");
    }

    @Test
    void storeAndTransportDoNotReachIntoTheServer() {
        verify(PackageLayeringRules.adaptersDoNotReachIntoTheServer(ROOT),
            PackageLayeringRules.adaptersDoNotReachIntoTheServer(FIXTURES), "LeakyTransport", "LeakyStore");
    }

    @Test
    void libraryDoesNotReachIntoTheCli() {
        verify(PackageLayeringRules.libraryDoesNotReachIntoTheCli(ROOT),
            PackageLayeringRules.libraryDoesNotReachIntoTheCli(FIXTURES), "CliAwareConfig");
    }

    @Test
    void noRulePassesWhenItSelectsNoClass() {
        JavaClasses unrelated = new ClassFileImporter().importClasses(PackageLayeringTest.class);
        for (ArchRule rule : PackageLayeringRules.all(ROOT)) {
            AssertionError e = assertThrows(AssertionError.class, () -> rule.check(unrelated),
                "passes vacuously: " + rule.getDescription());
            assertTrue(e.getMessage().contains("failed to check any classes"), e.getMessage());
        }
    }

    /** The rule holds in production, and flags each offender (and no clean class) among the fixtures. */
    private static void verify(ArchRule onProduction, ArchRule onFixtures, String... offenders) {
        onProduction.check(production);
        EvaluationResult result = onFixtures.evaluate(fixtures);
        assertTrue(result.hasViolation(), "the rule flags nothing among the fixtures: " + onFixtures.getDescription());
        List<String> details = result.getFailureReport().getDetails();
        for (String offender : offenders) {
            assertTrue(details.stream().anyMatch(d -> d.contains(FIXTURES) && d.contains(offender + ".")
                || d.contains(offender + " ") || d.contains(offender + ">")),
                onFixtures.getDescription() + " must flag " + offender + ", reported:\n" + String.join("\n", details));
        }
        String all = String.join("\n", details);
        assertFalse(all.contains("CleanCore") || all.contains("CleanStore"), "a clean fixture was flagged:\n" + all);
    }
}
