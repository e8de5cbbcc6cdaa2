package dev.dledger.raft.transport;

import dev.dledger.raft.core.OneLine;

/**
 * A frame that cannot be decoded: truncated, oversized, of an unknown version or type, or with a field out of range.
 * The message says what was wrong and, for a bad field, at which byte offset of the frame body, so the connection that
 * sent it can be closed with a logged reason. Control characters in it (from a quoted field) are shown escaped.
 */
public final class CodecException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public CodecException(String message) {
        super(OneLine.of(message));
    }
}
