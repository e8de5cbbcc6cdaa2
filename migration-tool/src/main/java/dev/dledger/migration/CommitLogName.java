package dev.dledger.migration;

/** The 20-digit names RocketMQ gives CommitLog, ConsumeQueue and DLedger data files. */
final class CommitLogName {

    private CommitLogName() {
    }

    static String of(long offset) {
        return String.format("%020d", offset);
    }
}
