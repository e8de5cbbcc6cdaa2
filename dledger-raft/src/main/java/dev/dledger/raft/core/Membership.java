package dev.dledger.raft.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
 * <h2>Witness members (issue 19)</h2>
 *
 * <p>A voter may be a <em>witness</em>: it votes and acknowledges appends exactly like any other voter (it counts in
 * {@link #quorum()} and in the commit rule), but it holds no application data for longer than it must and never
 * serves clients. The other voters are <em>data members</em> ({@link #dataMembers()}). A group of two data members
 * and one witness keeps the guarantees of a three-replica group (a majority holds every acknowledged entry, any one
 * node may die) while only two disks hold the data. The rules, enforced by {@link RaftNode}:
 * <ol>
 *   <li><b>Votes.</b> A witness keeps the index and term of every entry it acknowledged (and the headers needed
 *       for the log-matching check), so it votes with the ordinary up-to-date rule (Raft paper section 5.4.1) and
 *       its vote is as good as a data member's.</li>
 *   <li><b>Leading.</b> A witness may win an election: that is how a surviving data member gets an acknowledged
 *       tail that only the witness still holds (the data member that had it died, the survivor was behind, and the
 *       witness, whose log is more up to date, refuses the survivor its vote). As leader the witness refuses every
 *       client proposal, read and membership change ({@link ProposeResult.Status#NOT_LEADER}); it appends its
 *       NOOP, replicates its log to the data members, and as soon as one of them holds its whole log it hands
 *       leadership to that one (TimeoutNow, thesis section 3.10). Leader completeness is the ordinary Raft
 *       argument: nothing about elections changes, only what the witness leader accepts.</li>
 *   <li><b>Drop rule.</b> The leader tells every follower, in each AppendEntries, the <em>data-durable index</em>:
 *       the highest index that every data member of the configuration in force, and of the last committed one,
 *       holds durably (their match index, which in {@code flush=sync} is their fsynced end; the leader's own
 *       durable end when it is a data member), never above the commit index. A witness may drop the bodies of its
 *       entries up to the smallest of that value, its commit index and the end of the log the request proved to
 *       match ({@link RaftNode#witnessDropIndex()}); it compacts its log (snapshots) only up to that index too,
 *       and never sends a snapshot. It keeps their index, term and header. A data member never drops anything
 *       on the witness's account. So the witness holds the body of every entry that some data member may lack,
 *       and the survivor plus the witness stay a majority that holds every acknowledged entry in full.</li>
 *   <li><b>Never from a dropped body.</b> A witness leader never sends an entry at or below its drop index; a
 *       follower that needs one is left to the data member that holds it (by the drop rule both did).</li>
 * </ol>
 * A witness turns into a data member by a configuration change that clears its flag once it holds the full log
 * (it fetches the dropped bodies from the leader first), and back by one that sets the flag.
 *
 * <p>Encoding: a witness is written {@code !id} (or {@code !id=address}) in the CONFIG body, so every body written
 * before witnesses existed decodes unchanged, and a body without witnesses is byte for byte the earlier format. Ids
 * therefore may not start with {@code !}.
 *
 * @param voters    the ids of the voting members, sorted, without duplicates; may be empty for a node that has not yet
 *                  learned any configuration (a node being added)
 * @param addresses the agreed address of some or all voters (none for a configuration written before addresses were
 *                  recorded, or one bootstrapped without them); every key is a voter
 * @param witnesses the voters that are witnesses, sorted; every one is a voter; empty in a group without witnesses
 */
public record Membership(List<String> voters, Map<String, String> addresses, List<String> witnesses) {

    /** The configuration of a node that knows of no group yet. */
    public static final Membership EMPTY = new Membership(List.of());

    public Membership {
        TreeSet<String> sorted = new TreeSet<>();
        for (String v : voters) {
            if (v == null || v.isEmpty() || v.indexOf(',') >= 0 || v.indexOf('=') >= 0 || v.startsWith("!")) {
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
        TreeSet<String> wit = new TreeSet<>();
        for (String w : witnesses) {
            if (!sorted.contains(w)) {
                throw new IllegalArgumentException("witness '" + OneLine.of(String.valueOf(w)) + "' is not a voter");
            }
            wit.add(w);
        }
        witnesses = Collections.unmodifiableList(new ArrayList<>(wit));
    }

    /** A membership of {@code voters} at {@code addresses}, without witnesses. */
    public Membership(List<String> voters, Map<String, String> addresses) {
        this(voters, addresses, List.of());
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

    /** Whether {@code id} is a witness voter (see the class comment). */
    public boolean isWitness(String id) {
        return witnesses.contains(id);
    }

    /** The voters that are not witnesses, sorted: those that hold the application data. */
    public List<String> dataMembers() {
        List<String> data = new ArrayList<>(voters);
        data.removeAll(witnesses);
        return data;
    }

    /**
     * This configuration with the witness flag of voter {@code id} set or cleared.
     *
     * @throws IllegalArgumentException if {@code id} is not a voter
     */
    public Membership withWitness(String id, boolean witness) {
        if (!voters.contains(id)) {
            throw new IllegalArgumentException("'" + OneLine.of(id) + "' is not a voter");
        }
        Set<String> wit = new TreeSet<>(witnesses);
        if (witness) {
            wit.add(id);
        } else {
            wit.remove(id);
        }
        return new Membership(voters, addresses, new ArrayList<>(wit));
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
        return new Membership(next, addr, witnesses);
    }

    /** This configuration with {@code id} added as a witness at {@code address} (null for none). */
    public Membership withWitnessMember(String id, String address) {
        return with(id, address).withWitness(id, true);
    }

    /** This configuration with {@code id} removed. */
    public Membership without(String id) {
        List<String> next = new ArrayList<>(voters);
        next.remove(id);
        Map<String, String> addr = new TreeMap<>(addresses);
        addr.remove(id);
        List<String> wit = new ArrayList<>(witnesses);
        wit.remove(id);
        return new Membership(next, addr, wit);
    }

    /**
     * The body of a {@link EntryType#CONFIG} entry: the voters, comma-separated, each {@code id} or
     * {@code id=address}, a witness with a leading {@code !}, UTF-8. A body without addresses and witnesses is the
     * format of earlier versions.
     */
    public byte[] encode() {
        List<String> parts = new ArrayList<>(voters.size());
        for (String v : voters) {
            String a = addresses.get(v);
            String p = witnesses.contains(v) ? "!" + v : v;
            parts.add(a == null ? p : p + "=" + a);
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
        List<String> wit = new ArrayList<>();
        for (String raw : s.split(",", -1)) {
            String part = raw;
            if (part.startsWith("!")) {
                part = part.substring(1);
                int end = part.indexOf('=');
                wit.add(end < 0 ? part : part.substring(0, end));
            }
            int eq = part.indexOf('=');
            if (eq < 0) {
                ids.add(part);
            } else {
                String id = part.substring(0, eq);
                ids.add(id);
                addr.put(id, part.substring(eq + 1));
            }
        }
        return new Membership(ids, addr, wit);
    }

    @Override
    public String toString() {
        return new String(encode(), StandardCharsets.UTF_8);
    }
}
