package dev.dledger.rocketmq;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.rocketmq.common.message.MessageDecoder;

/**
 * A change of the broker's own state (consumer offsets, topics, subscription groups, delay offsets, the timer wheel's
 * progress) as one entry of
 * the group's Raft log. It is a NORMAL entry of the DLedger format (so stores stay 0.3.x-compatible and stock DLedger
 * reads it as an ordinary entry), told apart from a message by its body: where a message has its total size and then
 * its magic code, a state entry has its total size and then {@link #MAGIC}, which is none of RocketMQ's message or
 * BLANK magic codes. Reput steps over it, message readers never reach it (no consume queue points at it), and the
 * physical offsets of messages keep their meaning (entry position + 48).
 *
 * <p>Body, big-endian:
 * <pre>
 *   0  int   total size of the body
 *   4  int   MAGIC
 *   8  short version (1)
 *   10 int   number of operations
 *   14 ops   each: byte kind, then its fields (strings: int byte length, then UTF-8)
 * </pre>
 * Operations: {@link OffsetCommit} (group, topic, int queueId, long offset), {@link TopicPut} (topic, TopicConfig as
 * RocketMQ's JSON), {@link TopicDelete} (topic), {@link GroupPut} (group, SubscriptionGroupConfig as JSON, byte
 * ifAbsent), {@link GroupDelete} (group), {@link OffsetsRemoveGroup} (group), {@link OffsetsRemoveTopic} (topic),
 * {@link DelayOffset} (int level, long offset) and {@link TimerProgress} (long readTimeMs, long queueOffset).
 *
 * @param ops the operations, applied in order; at least one
 */
public record BrokerStateEntry(List<Op> ops) {

    /** The body's magic code, in the place of a message's magic code ("RST1"). */
    public static final int MAGIC = 0x52535431;
    /** The version of the body layout this code writes and reads. */
    public static final short VERSION = 1;
    private static final int HEADER_BYTES = 14;

    public BrokerStateEntry {
        ops = List.copyOf(ops);
        if (ops.isEmpty()) {
            throw new IllegalArgumentException("a broker state entry needs at least one operation");
        }
    }

    /** One change of broker state. */
    public sealed interface Op permits OffsetCommit, TopicPut, TopicDelete, GroupPut, GroupDelete, OffsetsRemoveGroup,
        OffsetsRemoveTopic, DelayOffset, TimerProgress {
    }

    /** A consumer group's committed offset of one queue. */
    public record OffsetCommit(String group, String topic, int queueId, long offset) implements Op {
        public OffsetCommit {
            Objects.requireNonNull(group, "group");
            Objects.requireNonNull(topic, "topic");
        }
    }

    /** A topic created or updated: its whole config, as RocketMQ's JSON of {@code TopicConfig}. */
    public record TopicPut(String topic, String json) implements Op {
        public TopicPut {
            Objects.requireNonNull(topic, "topic");
            Objects.requireNonNull(json, "json");
        }
    }

    /** A topic deleted. */
    public record TopicDelete(String topic) implements Op {
        public TopicDelete {
            Objects.requireNonNull(topic, "topic");
        }
    }

    /**
     * A subscription group created or updated, as RocketMQ's JSON of {@code SubscriptionGroupConfig}; with
     * {@code ifAbsent} (an auto-created group) it changes nothing when the group exists.
     */
    public record GroupPut(String group, String json, boolean ifAbsent) implements Op {
        public GroupPut {
            Objects.requireNonNull(group, "group");
            Objects.requireNonNull(json, "json");
        }
    }

    /** A subscription group deleted. */
    public record GroupDelete(String group) implements Op {
        public GroupDelete {
            Objects.requireNonNull(group, "group");
        }
    }

    /** Every committed offset of a consumer group removed. */
    public record OffsetsRemoveGroup(String group) implements Op {
        public OffsetsRemoveGroup {
            Objects.requireNonNull(group, "group");
        }
    }

    /** Every committed offset of a topic (all groups) removed. */
    public record OffsetsRemoveTopic(String topic) implements Op {
        public OffsetsRemoveTopic {
            Objects.requireNonNull(topic, "topic");
        }
    }

    /** The schedule service's progress in the queue of one delay level (it only moves forward when applied). */
    public record DelayOffset(int level, long offset) implements Op {
    }

    /**
     * The timer wheel's progress on the master ({@code TimerMessageStore}): every slot before {@code readTimeMs} (ms
     * since the epoch, a multiple of the timer precision) is delivered and those deliveries are committed, and the
     * messages of the timer topic before {@code queueOffset} (its consume queue offset) are in the master's wheel.
     * Applied on a follower, both only move forward; a follower's wheel takes the timer topic's messages up to the
     * offset, and its reading starts from the time when it becomes master.
     */
    public record TimerProgress(long readTimeMs, long queueOffset) implements Op {
    }

    private static final byte OFFSET_COMMIT = 1;
    private static final byte TOPIC_PUT = 2;
    private static final byte TOPIC_DELETE = 3;
    private static final byte GROUP_PUT = 4;
    private static final byte GROUP_DELETE = 5;
    private static final byte OFFSETS_REMOVE_GROUP = 6;
    private static final byte OFFSETS_REMOVE_TOPIC = 7;
    private static final byte DELAY_OFFSET = 8;
    private static final byte TIMER_PROGRESS = 9;

    /**
     * Whether an entry body is a broker state entry (and not a message): it is long enough for the header and has
     * {@link #MAGIC} where a message has its magic code.
     */
    public static boolean isStateEntry(byte[] body) {
        return body.length >= HEADER_BYTES && ByteBuffer.wrap(body).getInt(MessageDecoder.MESSAGE_MAGIC_CODE_POSITION)
            == MAGIC;
    }

    /** Whether the body that starts at {@code at} in {@code b} (with at least 8 bytes there) is a state entry. */
    public static boolean isStateEntry(ByteBuffer b, int at) {
        return b.limit() - at >= 8 && b.getInt(at + MessageDecoder.MESSAGE_MAGIC_CODE_POSITION) == MAGIC;
    }

    /** The entry body. */
    public byte[] encode() {
        List<byte[]> strings = new ArrayList<>();
        int size = HEADER_BYTES;
        for (Op op : ops) {
            size += 1;
            if (op instanceof OffsetCommit o) {
                size += string(strings, o.group()) + string(strings, o.topic()) + 4 + 8;
            } else if (op instanceof TopicPut t) {
                size += string(strings, t.topic()) + string(strings, t.json());
            } else if (op instanceof TopicDelete t) {
                size += string(strings, t.topic());
            } else if (op instanceof GroupPut g) {
                size += string(strings, g.group()) + string(strings, g.json()) + 1;
            } else if (op instanceof GroupDelete g) {
                size += string(strings, g.group());
            } else if (op instanceof OffsetsRemoveGroup g) {
                size += string(strings, g.group());
            } else if (op instanceof OffsetsRemoveTopic t) {
                size += string(strings, t.topic());
            } else if (op instanceof DelayOffset) {
                size += 4 + 8;
            } else if (op instanceof TimerProgress) {
                size += 8 + 8;
            }
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        b.putInt(size).putInt(MAGIC).putShort(VERSION).putInt(ops.size());
        int s = 0;
        for (Op op : ops) {
            if (op instanceof OffsetCommit o) {
                b.put(OFFSET_COMMIT);
                putString(b, strings.get(s++));
                putString(b, strings.get(s++));
                b.putInt(o.queueId()).putLong(o.offset());
            } else if (op instanceof TopicPut) {
                b.put(TOPIC_PUT);
                putString(b, strings.get(s++));
                putString(b, strings.get(s++));
            } else if (op instanceof TopicDelete) {
                b.put(TOPIC_DELETE);
                putString(b, strings.get(s++));
            } else if (op instanceof GroupPut g) {
                b.put(GROUP_PUT);
                putString(b, strings.get(s++));
                putString(b, strings.get(s++));
                b.put((byte) (g.ifAbsent() ? 1 : 0));
            } else if (op instanceof GroupDelete) {
                b.put(GROUP_DELETE);
                putString(b, strings.get(s++));
            } else if (op instanceof OffsetsRemoveGroup) {
                b.put(OFFSETS_REMOVE_GROUP);
                putString(b, strings.get(s++));
            } else if (op instanceof OffsetsRemoveTopic) {
                b.put(OFFSETS_REMOVE_TOPIC);
                putString(b, strings.get(s++));
            } else if (op instanceof DelayOffset d) {
                b.put(DELAY_OFFSET).putInt(d.level()).putLong(d.offset());
            } else if (op instanceof TimerProgress t) {
                b.put(TIMER_PROGRESS).putLong(t.readTimeMs()).putLong(t.queueOffset());
            }
        }
        return b.array();
    }

    private static int string(List<byte[]> strings, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        strings.add(bytes);
        return 4 + bytes.length;
    }

    private static void putString(ByteBuffer b, byte[] s) {
        b.putInt(s.length).put(s);
    }

    /**
     * Reads an entry body.
     *
     * @throws IllegalArgumentException in one line naming what is wrong, when the body is not a well-formed state
     *                                  entry of a version this code reads
     */
    public static BrokerStateEntry decode(byte[] body) {
        if (!isStateEntry(body)) {
            throw new IllegalArgumentException("not a broker state entry: " + body.length + " bytes without magic "
                + Integer.toHexString(MAGIC));
        }
        ByteBuffer b = ByteBuffer.wrap(body);
        int size = b.getInt();
        if (size != body.length) {
            throw new IllegalArgumentException("broker state entry says " + size + " bytes but has " + body.length);
        }
        b.getInt();
        short version = b.getShort();
        if (version != VERSION) {
            throw new IllegalArgumentException("broker state entry of version " + version + ", this broker reads "
                + VERSION);
        }
        int count = b.getInt();
        if (count <= 0 || count > body.length) {
            throw new IllegalArgumentException("broker state entry announces " + count + " operations in "
                + body.length + " bytes");
        }
        List<Op> ops = new ArrayList<>(Math.min(count, 1024));
        try {
            for (int i = 0; i < count; i++) {
                byte kind = b.get();
                ops.add(switch (kind) {
                    case OFFSET_COMMIT -> new OffsetCommit(getString(b), getString(b), b.getInt(), b.getLong());
                    case TOPIC_PUT -> new TopicPut(getString(b), getString(b));
                    case TOPIC_DELETE -> new TopicDelete(getString(b));
                    case GROUP_PUT -> new GroupPut(getString(b), getString(b), b.get() != 0);
                    case GROUP_DELETE -> new GroupDelete(getString(b));
                    case OFFSETS_REMOVE_GROUP -> new OffsetsRemoveGroup(getString(b));
                    case OFFSETS_REMOVE_TOPIC -> new OffsetsRemoveTopic(getString(b));
                    case DELAY_OFFSET -> new DelayOffset(b.getInt(), b.getLong());
                    case TIMER_PROGRESS -> new TimerProgress(b.getLong(), b.getLong());
                    default -> throw new IllegalArgumentException("broker state entry operation " + i
                        + " has unknown kind " + kind);
                });
            }
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("broker state entry of " + body.length + " bytes ends inside operation "
                + ops.size() + " of " + count);
        }
        if (b.hasRemaining()) {
            throw new IllegalArgumentException("broker state entry has " + b.remaining() + " bytes after its "
                + count + " operations");
        }
        return new BrokerStateEntry(ops);
    }

    private static String getString(ByteBuffer b) {
        int length = b.getInt();
        if (length < 0 || length > b.remaining()) {
            throw new IllegalArgumentException("broker state entry has a string of " + length + " bytes where "
                + b.remaining() + " remain");
        }
        byte[] bytes = new byte[length];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
