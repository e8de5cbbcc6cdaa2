package dev.dledger.raft.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.TreeSet;

/**
 * The set of voting members of a group. Ids are kept sorted so that iteration, encoding and equality are
 * deterministic.
 *
 * @param voters the ids of the voting members, sorted, without duplicates; may be empty for a node that has not yet
 *               learned any configuration (a node being added)
 */
public record Membership(List<String> voters) {

    /** The configuration of a node that knows of no group yet. */
    public static final Membership EMPTY = new Membership(List.of());

    public Membership {
        TreeSet<String> sorted = new TreeSet<>();
        for (String v : voters) {
            if (v == null || v.isEmpty() || v.indexOf(',') >= 0) {
                throw new IllegalArgumentException("bad voter id '" + (v == null ? null : OneLine.of(v)) + "'");
            }
            if (!sorted.add(v)) {
                throw new IllegalArgumentException("duplicate voter id '" + OneLine.of(v) + "'");
            }
        }
        voters = Collections.unmodifiableList(new ArrayList<>(sorted));
    }

    /** A membership of the given ids. */
    public static Membership of(String... ids) {
        return new Membership(List.of(ids));
    }

    /** Whether {@code id} is a voter. */
    public boolean contains(String id) {
        return voters.contains(id);
    }

    /** The number of votes that form a majority of this configuration. */
    public int quorum() {
        return voters.size() / 2 + 1;
    }

    /** This configuration with {@code id} added. */
    public Membership with(String id) {
        List<String> next = new ArrayList<>(voters);
        next.add(id);
        return new Membership(next);
    }

    /** This configuration with {@code id} removed. */
    public Membership without(String id) {
        List<String> next = new ArrayList<>(voters);
        next.remove(id);
        return new Membership(next);
    }

    /** The body of a {@link EntryType#CONFIG} entry: the voter ids, comma-separated, UTF-8. */
    public byte[] encode() {
        return String.join(",", voters).getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Decodes the body of a {@link EntryType#CONFIG} entry.
     *
     * @throws IllegalArgumentException if the bytes are not a valid voter list
     */
    public static Membership decode(byte[] body) {
        String s = new String(body, StandardCharsets.UTF_8);
        if (s.isEmpty()) {
            return EMPTY;
        }
        return new Membership(List.of(s.split(",", -1)));
    }
}
