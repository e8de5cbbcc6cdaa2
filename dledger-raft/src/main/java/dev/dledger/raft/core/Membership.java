package dev.dledger.raft.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The set of voting members of a group, and the network address of those whose address the group agreed on. Ids are
 * kept sorted so that iteration, encoding and equality are deterministic.
 *
 * <p>An address is opaque text to the core ({@code host:port} for the transports we have). A member added at run time
 * carries its address in the {@link EntryType#CONFIG} entry that adds it, so that every node, and every node after a
 * restart, learns it from the log rather than from a configuration file written before the member existed.
 *
 * @param voters    the ids of the voting members, sorted, without duplicates; may be empty for a node that has not yet
 *                  learned any configuration (a node being added)
 * @param addresses the agreed address of some or all voters (none for a configuration written before addresses were
 *                  recorded, or one bootstrapped without them); every key is a voter
 */
public record Membership(List<String> voters, Map<String, String> addresses) {

    /** The configuration of a node that knows of no group yet. */
    public static final Membership EMPTY = new Membership(List.of());

    public Membership {
        TreeSet<String> sorted = new TreeSet<>();
        for (String v : voters) {
            if (v == null || v.isEmpty() || v.indexOf(',') >= 0 || v.indexOf('=') >= 0) {
                throw new IllegalArgumentException("bad voter id '" + (v == null ? null : OneLine.of(v)) + "'");
            }
            if (!sorted.add(v)) {
                throw new IllegalArgumentException("duplicate voter id '" + OneLine.of(v) + "'");
            }
        }
        voters = Collections.unmodifiableList(new ArrayList<>(sorted));
        TreeMap<String, String> addr = new TreeMap<>();
        for (Map.Entry<String, String> e : addresses.entrySet()) {
            if (!sorted.contains(e.getKey())) {
                throw new IllegalArgumentException("address given for '" + OneLine.of(e.getKey())
                    + "', which is not a voter");
            }
            checkAddress(e.getKey(), e.getValue());
            addr.put(e.getKey(), e.getValue());
        }
        addresses = Collections.unmodifiableMap(addr);
    }

    /** A membership of {@code voters} without addresses. */
    public Membership(List<String> voters) {
        this(voters, Map.of());
    }

    /** A membership of the given ids, without addresses. */
    public static Membership of(String... ids) {
        return new Membership(List.of(ids));
    }

    /**
     * Checks that {@code address} can be recorded for {@code id}.
     *
     * @throws IllegalArgumentException naming the id when it is empty or holds a comma, an equals sign or a line break
     */
    public static void checkAddress(String id, String address) {
        if (address == null || address.isBlank() || address.indexOf(',') >= 0 || address.indexOf('=') >= 0
            || address.indexOf('\n') >= 0 || address.indexOf('\r') >= 0) {
            throw new IllegalArgumentException("bad address '" + (address == null ? null : OneLine.of(address))
                + "' for voter '" + OneLine.of(id) + "'");
        }
    }

    /** Whether {@code id} is a voter. */
    public boolean contains(String id) {
        return voters.contains(id);
    }

    /** The agreed address of {@code id}, or null when none was recorded. */
    public String address(String id) {
        return addresses.get(id);
    }

    /** The number of votes that form a majority of this configuration. */
    public int quorum() {
        return voters.size() / 2 + 1;
    }

    /** This configuration with {@code id} added, without an address. */
    public Membership with(String id) {
        return with(id, null);
    }

    /** This configuration with {@code id} added at {@code address} (null for none). */
    public Membership with(String id, String address) {
        List<String> next = new ArrayList<>(voters);
        next.add(id);
        Map<String, String> addr = new TreeMap<>(addresses);
        if (address != null) {
            addr.put(id, address);
        }
        return new Membership(next, addr);
    }

    /** This configuration with {@code id} removed. */
    public Membership without(String id) {
        List<String> next = new ArrayList<>(voters);
        next.remove(id);
        Map<String, String> addr = new TreeMap<>(addresses);
        addr.remove(id);
        return new Membership(next, addr);
    }

    /**
     * The body of a {@link EntryType#CONFIG} entry: the voters, comma-separated, each {@code id} or
     * {@code id=address}, UTF-8. A body without addresses is the format of earlier versions.
     */
    public byte[] encode() {
        List<String> parts = new ArrayList<>(voters.size());
        for (String v : voters) {
            String a = addresses.get(v);
            parts.add(a == null ? v : v + "=" + a);
        }
        return String.join(",", parts).getBytes(StandardCharsets.UTF_8);
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
        List<String> ids = new ArrayList<>();
        Map<String, String> addr = new TreeMap<>();
        for (String part : s.split(",", -1)) {
            int eq = part.indexOf('=');
            if (eq < 0) {
                ids.add(part);
            } else {
                String id = part.substring(0, eq);
                ids.add(id);
                addr.put(id, part.substring(eq + 1));
            }
        }
        return new Membership(ids, addr);
    }

    @Override
    public String toString() {
        return new String(encode(), StandardCharsets.UTF_8);
    }
}
