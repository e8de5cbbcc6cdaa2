package dev.dledger.raft.store;

import java.util.Set;
import java.util.TreeSet;

/**
 * When old data files are deleted, with DLedger's config keys and defaults (its {@code CleanSpaceService}). Files
 * are deleted oldest first, whole, and never past the index the caller says is safe (see {@link LogRetention}).
 *
 * @param fileReservedHours            a data file is expired once this many hours have passed since it was last
 *                                     written (its last-modified time). Default 72; values below 1 count as 1
 * @param deleteWhen                   the hours of the day (0-23, in the clock's time zone) during which expired
 *                                     files are deleted, separated by {@code ;}, e.g. {@code "04;16"}. Default
 *                                     {@code "04"}
 * @param diskSpaceRatioToCheckExpired above this share of the disk used (0-1), expired files are deleted at any hour.
 *                                     Default 0.70
 * @param diskSpaceRatioToForceClean   above this share of the disk used (0-1), files are deleted whether expired or
 *                                     not (when {@code enableDiskForceClean}), and new data files avoid the folders
 *                                     above it. Default 0.85. Above it plus 0.05 (at most 0.95), appends are refused:
 *                                     see {@link #diskFullRatio()}
 * @param enableDiskForceClean         whether files that have not expired are deleted above
 *                                     {@code diskSpaceRatioToForceClean}. Default true
 */
public record RetentionPolicy(int fileReservedHours, String deleteWhen, double diskSpaceRatioToCheckExpired,
                              double diskSpaceRatioToForceClean, boolean enableDiskForceClean) {

    public RetentionPolicy {
        if (fileReservedHours < 0) {
            throw new IllegalArgumentException("fileReservedHours must be >= 0, was " + fileReservedHours);
        }
        parseHours(deleteWhen);
        checkRatio("diskSpaceRatioToCheckExpired", diskSpaceRatioToCheckExpired);
        checkRatio("diskSpaceRatioToForceClean", diskSpaceRatioToForceClean);
    }

    /** DLedger's defaults: 72 hours, at 04, expired files at any hour above 70 % disk use, all files above 85 %. */
    public static RetentionPolicy defaults() {
        return new RetentionPolicy(72, "04", 0.70, 0.85, true);
    }

    /** A copy with other reserved hours. */
    public RetentionPolicy withFileReservedHours(int hours) {
        return new RetentionPolicy(hours, deleteWhen, diskSpaceRatioToCheckExpired, diskSpaceRatioToForceClean,
            enableDiskForceClean);
    }

    /** A copy with other deletion hours ({@code "04;16"}). */
    public RetentionPolicy withDeleteWhen(String hours) {
        return new RetentionPolicy(fileReservedHours, hours, diskSpaceRatioToCheckExpired, diskSpaceRatioToForceClean,
            enableDiskForceClean);
    }

    /** A copy with other disk-use ratios. */
    public RetentionPolicy withDiskSpaceRatios(double checkExpired, double forceClean) {
        return new RetentionPolicy(fileReservedHours, deleteWhen, checkExpired, forceClean, enableDiskForceClean);
    }

    /**
     * Above this share of the disk used, a leader refuses new appends (DISK_FULL) until retention frees space, as
     * DLedger: {@link #diskSpaceRatioToForceClean()} plus 0.05, at most 0.95.
     */
    public double diskFullRatio() {
        return Math.min(diskSpaceRatioToForceClean + 0.05, 0.95);
    }

    /** The hours of {@link #deleteWhen()}. */
    public Set<Integer> deleteHours() {
        return parseHours(deleteWhen);
    }

    /** Milliseconds a file is kept after its last write: {@link #fileReservedHours()}, at least one hour. */
    public long reservedMillis() {
        return Math.max(1, fileReservedHours) * 3_600_000L;
    }

    private static Set<Integer> parseHours(String when) {
        if (when == null || when.isBlank()) {
            throw new IllegalArgumentException("deleteWhen must list hours of the day separated by ';', was \""
                + when + "\"");
        }
        Set<Integer> hours = new TreeSet<>();
        for (String part : when.split(";", -1)) {
            int h;
            try {
                h = Integer.parseInt(part.trim());
            } catch (NumberFormatException e) {
                h = -1;
            }
            if (h < 0 || h > 23) {
                throw new IllegalArgumentException("deleteWhen \"" + when + "\": \"" + part
                    + "\" is not an hour of the day (0-23)");
            }
            hours.add(h);
        }
        return hours;
    }

    private static void checkRatio(String name, double ratio) {
        if (!(ratio > 0 && ratio <= 1)) {
            throw new IllegalArgumentException(name + " must be in (0, 1], was " + ratio);
        }
    }
}
