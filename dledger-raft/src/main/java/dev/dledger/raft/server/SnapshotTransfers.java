package dev.dledger.raft.server;

import dev.dledger.raft.core.FollowerProgress;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.transport.SnapshotChunk;
import dev.dledger.raft.transport.Transport;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.zip.CRC32C;
import org.slf4j.Logger;

/**
 * Moves snapshots between the drivers of a group, in chunks, one chunk in flight per follower: the follower
 * acknowledges each chunk with the next offset it needs, so a transfer that broke off resumes where it stopped
 * when a leader sends the same bytes again, as identified by the snapshot's index and term, its length and CRC32C:
 * the same leader, or the next one, so that a transfer longer than one leadership still ends. Once all bytes are in
 * and their CRC matches, the follower steps the request of the latest leader, with the bytes, into its core.
 *
 * <p>Used only on the node's driver thread.
 */
final class SnapshotTransfers {

    private final Logger log;
    /** The largest snapshot held in memory for a transfer. */
    static final long MAX_SNAPSHOT_BYTES = Integer.MAX_VALUE - 8;

    private final String group;
    private final String id;
    private final Transport transport;
    private final int chunkBytes;
    private final Map<String, Outgoing> outgoing = new HashMap<>();
    private final LongSupplier nanoTime;
    private Incoming incoming;

    private static final class Outgoing {
        final InstallSnapshotRequest request;
        final byte[] data;
        final int crc;
        /** The offset of the chunk sent last: on its way, or lost. */
        long inflight;
        /** When the chunk at {@link #inflight} was sent (the driver's clock). */
        long sentAt;
        /** The time the last chunk that arrived took, there and back; 0 before the first. */
        long roundTrip;

        Outgoing(InstallSnapshotRequest request, byte[] data, int crc) {
            this.request = request;
            this.data = data;
            this.crc = crc;
        }
    }

    private static final class Incoming {
        final SnapshotChunk first;
        final byte[] data;
        int size;
        /**
         * The request of the latest term among this transfer's chunks: the one stepped into the core once all bytes
         * are in. A leader deposed without knowing it yet may still send chunks of the same bytes beside its
         * successor's; the core would refuse its request for its term.
         */
        InstallSnapshotRequest latest;

        Incoming(SnapshotChunk first) {
            this.first = first;
            this.data = new byte[(int) first.total()];
            this.latest = first.request();
        }

        boolean sameTransfer(SnapshotChunk c) {
            return c.crc() == first.crc() && c.total() == first.total()
                && c.request().snapshot().equals(first.request().snapshot());
        }
    }

    SnapshotTransfers(String group, String id, Transport transport, int chunkBytes, LongSupplier nanoTime,
                      Logger log) {
        this.nanoTime = nanoTime;
        this.log = log;
        this.group = group;
        this.id = id;
        this.transport = transport;
        this.chunkBytes = chunkBytes;
    }

    /** Leader: starts (or restarts) sending {@code data} for the core's request; the follower says where to begin. */
    void send(InstallSnapshotRequest request, byte[] data) {
        byte[] bytes = data == null ? new byte[0] : data;
        Outgoing o = new Outgoing(request, bytes, crc(bytes));
        outgoing.put(request.to(), o);
        log.info("[{} {}] sending snapshot {}@{} ({} bytes) to {}", group, id, request.snapshot().index(),
            request.snapshot().term(), bytes.length, request.to());
        sendChunk(o, 0);
    }

    /**
     * Leader: goes over the transfers at the driver's ticks. A transfer to a follower the core no longer sends a
     * snapshot to (it left the group, installed the snapshot, or the core gave up on it after its snapshot timeout and
     * will name a snapshot again) is dropped. Of the others, the chunk not acknowledged within {@code afterNanos} or
     * four of the transfer's last round trips, whichever is longer, is sent again if the follower answers the leader
     * (the chunk or its acknowledgement was lost: nothing else would send it before the core names the snapshot
     * again); to a follower that answers nothing, nothing is sent until it does.
     *
     * @param progress the core's view of a follower: null when the leader does not replicate to it
     */
    void resendStalled(long now, long afterNanos, Function<String, FollowerProgress> progress) {
        for (Iterator<Outgoing> it = outgoing.values().iterator(); it.hasNext(); ) {
            Outgoing o = it.next();
            FollowerProgress p = progress.apply(o.request.to());
            if (p == null || !p.sendingSnapshot()) {
                log.debug("[{} {}] snapshot {} to {} no longer wanted: dropped at offset {}", group, id,
                    o.request.snapshot().index(), o.request.to(), o.inflight);
                it.remove();
            } else if (p.active() && now - o.sentAt >= Math.max(afterNanos, 4 * o.roundTrip)) {
                log.debug("[{} {}] no acknowledgement of the chunk at {} of snapshot {} to {}: sending it again", group,
                    id, o.inflight, o.request.snapshot().index(), o.request.to());
                sendChunk(o, o.inflight);
            }
        }
    }

    private void sendChunk(Outgoing o, long offset) {
        o.inflight = offset;
        o.sentAt = nanoTime.getAsLong();
        int len = (int) Math.min(chunkBytes, o.data.length - offset);
        byte[] piece = Arrays.copyOfRange(o.data, (int) offset, (int) offset + len);
        transport.sendChunk(group, new SnapshotChunk(id, o.request.to(), o.request, o.data.length, o.crc,
            offset, piece, false));
    }

    /**
     * Handles a chunk or an acknowledgement.
     *
     * @param deliver receives the core's request with all bytes attached, once they are in and verified
     */
    void receive(SnapshotChunk c, Consumer<InstallSnapshotRequest> deliver) {
        if (c.ack()) {
            Outgoing o = outgoing.get(c.from());
            if (o == null || o.crc != c.crc() || !o.request.snapshot().equals(c.request().snapshot())) {
                return;
            }
            if (c.offset() > o.inflight) {
                // The chunk on its way arrived: the time it took, there and back.
                o.roundTrip = nanoTime.getAsLong() - o.sentAt;
            }
            if (c.offset() >= o.data.length) {
                outgoing.remove(c.from());
            } else if (c.offset() != o.inflight) {
                sendChunk(o, c.offset());
            }
            // Else the chunk asked for is on its way already: this acknowledgement is a copy (a duplicate, or the
            // follower's answer to a chunk it had) and sending it again would start a second chunk-and-acknowledgement
            // chain beside the first, each lasting until the transfer ends, so copies would multiply the traffic
            // without bound. A chunk that was lost is sent again by resendStalled.
            return;
        }
        if (c.total() > MAX_SNAPSHOT_BYTES) {
            log.warn("[{} {}] refused a snapshot of {} bytes from {}: larger than {}", group, id, c.total(), c.from(),
                MAX_SNAPSHOT_BYTES);
            return;
        }
        if (incoming == null || !incoming.sameTransfer(c)) {
            if (c.offset() != 0) {
                ack(c, 0);
                return;
            }
            incoming = new Incoming(c);
        }
        Incoming in = incoming;
        if (c.request().term() > in.latest.term()) {
            log.info("[{} {}] snapshot {}@{} from {} (term {}): the same bytes {} was sending, {} of {} already here;"
                + " resuming", group, id, c.request().snapshot().index(), c.request().snapshot().term(), c.from(),
                c.request().term(), in.latest.from(), in.size, in.data.length);
            in.latest = c.request();
        }
        if (c.offset() != in.size) {
            // A resend from the start, or a chunk after a gap: tell the leader where this node stands.
            ack(c, in.size);
            return;
        }
        System.arraycopy(c.data(), 0, in.data, in.size, c.data().length);
        in.size += c.data().length;
        if (in.size < in.data.length) {
            ack(c, in.size);
            return;
        }
        incoming = null;
        if (crc(in.data) != c.crc()) {
            log.warn("[{} {}] snapshot {} from {} failed its CRC check; asking for it again", group, id,
                c.request().snapshot().index(), c.from());
            ack(c, 0);
            return;
        }
        ack(c, in.size);
        deliver.accept(in.latest.withData(in.data));
    }

    private void ack(SnapshotChunk c, long nextOffset) {
        transport.sendChunk(group, new SnapshotChunk(id, c.from(), c.request(), c.total(), c.crc(), nextOffset,
            new byte[0], true));
    }

    /** Forgets the transfers of a previous role. */
    void reset() {
        outgoing.clear();
    }

    static int crc(byte[] data) {
        CRC32C crc = new CRC32C();
        crc.update(data, 0, data.length);
        return (int) crc.getValue();
    }
}
