package dev.dledger.raft.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The slices of the port range that test JVMs running side by side take their ports from. */
class FreePortsTest {

    @Test
    void slicesSplitTheRangeWithoutOverlapAndNoSliceIsTheWholeRange() {
        assertArrayEquals(new int[] {10_000, 32_000}, FreePorts.slice(null));
        assertArrayEquals(new int[] {10_000, 32_000}, FreePorts.slice(" "));
        assertArrayEquals(new int[] {10_000, 21_000}, FreePorts.slice("1/2"));
        assertArrayEquals(new int[] {21_000, 32_000}, FreePorts.slice(" 2 / 2 "));
        assertArrayEquals(new int[] {10_000, 32_000}, FreePorts.slice("1/1"));
    }

    @Test
    void aBadSliceIsRefusedNamingTheProperty() {
        for (String bad : List.of("0/2", "3/2", "2", "a/b", "1/2/3", "1/0", "1/65")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FreePorts.slice(bad), bad);
            assertTrue(e.getMessage().startsWith("-DfreePorts.slice=" + bad + ": expected k/n"), e.getMessage());
        }
    }
}
