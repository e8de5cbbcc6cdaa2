package dev.dledger.raft.cli;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.config.Peers;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.transport.ClientProtocol;
import dev.dledger.raft.transport.TlsSettings;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** The commands that talk to a running group as a client. */
final class ClientCommands {

    private ClientCommands() {
    }

    /** Options every client command shares. */
    abstract static class Base implements java.util.concurrent.Callable<Integer> {
        @Option(names = {"-g", "--group"}, defaultValue = "default", description = "group name (default: ${DEFAULT-VALUE})")
        String group;

        @Option(names = {"-p", "--peers"}, defaultValue = "n0-localhost:20911",
            description = "the group's nodes: n0-host:port;n1-host:port;... (default: ${DEFAULT-VALUE})")
        String peers;

        @Option(names = "--timeout-ms", defaultValue = "3000", description = "per request (default: ${DEFAULT-VALUE})")
        long timeoutMs;

        @Option(names = "--token", description = "the nodes' client token (their clientToken; a broker's "
            + "raftAdminToken), proved, never sent")
        String token;

        @Option(names = "--tls-key-store", description = "PKCS12/JKS file with this client's key and certificate, "
            + "for nodes that run mutual TLS")
        java.nio.file.Path tlsKeyStore;

        @Option(names = "--tls-key-store-password", description = "the key store's password")
        String tlsKeyStorePassword;

        @Option(names = "--tls-trust-store", description = "PKCS12/JKS file of trusted certificates (default: the "
            + "JDK's)")
        java.nio.file.Path tlsTrustStore;

        @Option(names = "--tls-trust-store-password", description = "the trust store's password")
        String tlsTrustStorePassword;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        PrintWriter out() {
            return spec.commandLine().getOut();
        }

        @Override
        public Integer call() throws Exception {
            java.util.Map<String, java.net.InetSocketAddress> nodes;
            try {
                nodes = Peers.parse(peers);
            } catch (IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: --peers: " + e.getMessage());
                return 2;
            }
            TlsSettings tls = null;
            if (tlsKeyStore != null || tlsTrustStore != null) {
                if (tlsKeyStore != null && tlsKeyStorePassword == null) {
                    spec.commandLine().getErr().println("error: --tls-key-store needs --tls-key-store-password");
                    return 2;
                }
                tls = new TlsSettings(tlsKeyStore, tlsKeyStorePassword, tlsTrustStore, tlsTrustStorePassword);
            }
            try (RaftClient client = new RaftClient(group, nodes, timeoutMs, 10, token, tls)) {
                return run(client);
            } catch (IllegalArgumentException e) {
                spec.commandLine().getErr().println("error: " + e.getMessage());
                return 2;
            } catch (ExecutionException e) {
                spec.commandLine().getErr().println("error: " + e.getCause().getMessage());
                return 2;
            }
        }

        abstract int run(RaftClient client) throws Exception;

        int report(ClientProtocol.Response r, String what) {
            if (r.status() == ClientProtocol.Status.OK) {
                out().println(what);
                return 0;
            }
            spec.commandLine().getErr().println("error: " + r.status()
                + (r.leaderHint() == null ? "" : " (leader " + r.leaderHint() + ")"));
            return 1;
        }
    }

    @Command(name = "append", mixinStandardHelpOptions = true, description = "Append entries and wait for commit.")
    static final class Append extends Base {
        @Option(names = {"-d", "--data"}, defaultValue = "Hello", description = "payload text (default: ${DEFAULT-VALUE})")
        String data;

        @Option(names = {"-c", "--count"}, defaultValue = "1", description = "how many appends (default: ${DEFAULT-VALUE})")
        int count;

        @Override
        int run(RaftClient client) throws Exception {
            int rc = 0;
            for (int i = 0; i < count && rc == 0; i++) {
                ClientProtocol.Response r = client.append(data.getBytes(StandardCharsets.UTF_8)).get();
                rc = report(r, "appended index=" + r.index() + " term=" + r.term()
                    + (r.positions().length > 0 ? " pos=" + r.positions()[0] : ""));
            }
            return rc;
        }
    }

    @Command(name = "get", mixinStandardHelpOptions = true, description = "Read a committed entry by index.")
    static final class Get extends Base {
        @Option(names = {"-i", "--index"}, required = true, description = "the entry's index")
        long index;

        @Override
        int run(RaftClient client) throws Exception {
            ClientProtocol.Response r = client.get(index).get();
            if (r.status() == ClientProtocol.Status.OK) {
                out().println("index=" + r.entry().index() + " term=" + r.entry().term() + " type="
                    + r.entry().type() + " body=" + new String(r.entry().data(), StandardCharsets.UTF_8));
                return 0;
            }
            return report(r, "");
        }
    }

    @Command(name = "write", mixinStandardHelpOptions = true,
        description = "Set a key of a register group (see register) and wait for commit.")
    static final class Write extends Base {
        @Option(names = {"-k", "--key"}, required = true, description = "the key")
        String key;

        @Option(names = {"-v", "--value"}, required = true, description = "the value")
        String value;

        @Override
        int run(RaftClient client) throws Exception {
            ClientProtocol.Response r = client.append(KeyValueStateMachine.set(key, value)).get();
            return report(r, "wrote " + key + " at index " + r.index());
        }
    }

    @Command(name = "read", mixinStandardHelpOptions = true,
        description = "Print a key's value from a register group: a linearizable read at the leader (read index, "
            + "then the applied state). Exit 1 when the key is not set.")
    static final class Read extends Base {
        @Option(names = {"-k", "--key"}, required = true, description = "the key")
        String key;

        @Option(names = "--lease", description = "let the leader answer under its lease, without a heartbeat round")
        boolean lease;

        @Override
        int run(RaftClient client) throws Exception {
            ClientProtocol.Response r = client.query(KeyValueStateMachine.get(key), lease).get();
            if (r.status() == ClientProtocol.Status.NOT_FOUND) {
                spec.commandLine().getErr().println("error: key '" + key + "' is not set");
                return 1;
            }
            if (r.status() == ClientProtocol.Status.INVALID) {
                spec.commandLine().getErr().println("error: group " + group + " serves no key-value reads; start "
                    + "its nodes with register (or stateMachine=kv)");
                return 1;
            }
            return report(r, r.result() == null ? "" : new String(r.result(), StandardCharsets.UTF_8));
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true,
        description = "Each node's role, term and indexes, and each follower's lag at the leader.")
    static final class Status extends Base {
        @Override
        int run(RaftClient client) throws Exception {
            int unreachable = 0;
            for (Map.Entry<String, java.net.InetSocketAddress> peer : Peers.parse(peers).entrySet()) {
                try {
                    ClientProtocol.Response r = client.metadata(peer.getKey()).get(timeoutMs, TimeUnit.MILLISECONDS);
                    out().printf("%s %s role=%s term=%d leader=%s last=%d commit=%d%n", peer.getKey(),
                        peer.getValue(), r.role(), r.term(), r.leaderHint(), r.lastIndex(), r.index());
                    for (ClientProtocol.PeerLag lag : r.followers()) {
                        out().printf("  follower %s match=%d lag=%d%n", lag.id(), lag.match(),
                            Math.max(0, r.lastIndex() - lag.match()));
                    }
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    unreachable++;
                    // A node that answered with a refusal (no or wrong --token, status not served) is up: say so.
                    boolean refused = e.getCause() instanceof RaftClient.ClientException ce && ce.authenticationFailed();
                    out().printf("%s %s %s: %s%n", peer.getKey(), peer.getValue(), refused ? "refused" : "unreachable",
                        e.getCause() == null ? e.toString() : e.getCause().getMessage());
                }
            }
            return unreachable == 0 ? 0 : 1;
        }
    }

    @Command(name = "leadership-transfer", mixinStandardHelpOptions = true,
        description = "Hand leadership to another node.")
    static final class Transfer extends Base {
        @Option(names = "--to", required = true, description = "the node that should lead")
        String to;

        @Override
        int run(RaftClient client) throws Exception {
            return report(client.leadershipTransfer(to).get(), "transfer to " + to + " started");
        }
    }

    @Command(name = "preferred-leader", mixinStandardHelpOptions = true,
        description = "Hand leadership back to the preferred node (a broker group's preferredLeaderId) once it is "
            + "caught up: nothing to do when it leads (exit 0); refused while it lags the leader (exit 1).")
    static final class PreferredLeader extends Base {
        @Option(names = "--id", required = true, description = "the preferred node")
        String id;

        @Override
        int run(RaftClient client) throws Exception {
            if (!Peers.parse(peers).containsKey(id)) {
                spec.commandLine().getErr().println("error: --id " + id + " is not one of --peers");
                return 2;
            }
            ClientProtocol.Response mine = client.metadata(id).get(timeoutMs, TimeUnit.MILLISECONDS);
            if (id.equals(mine.leaderHint()) && "LEADER".equals(mine.role())) {
                out().println(id + " leads already (term " + mine.term() + ")");
                return 0;
            }
            String leader = mine.leaderHint();
            if (leader == null || !Peers.parse(peers).containsKey(leader)) {
                spec.commandLine().getErr().println("error: " + id + " knows no leader now; try again after the "
                    + "election");
                return 1;
            }
            ClientProtocol.Response at = client.metadata(leader).get(timeoutMs, TimeUnit.MILLISECONDS);
            long lag = -1;
            for (ClientProtocol.PeerLag p : at.followers()) {
                if (p.id().equals(id)) {
                    lag = Math.max(0, at.lastIndex() - p.match());
                }
            }
            if (lag != 0) {
                spec.commandLine().getErr().println("error: " + id + " is not caught up with leader " + leader
                    + (lag < 0 ? " (the leader reports no progress for it)" : " (lag " + lag + " entries)")
                    + "; try again when its lag is 0");
                return 1;
            }
            return report(client.leadershipTransfer(id).get(), "transfer from " + leader + " to " + id + " started");
        }
    }

    @Command(name = "member", mixinStandardHelpOptions = true,
        description = {"Add or remove one voter (one change at a time), or turn a data member into a witness.",
            "add: the leader first catches the new node up as a non-voter, then makes it a voter by itself; this command "
                + "waits for that, printing its lag. Give the new node's Raft address with --address so that every "
                + "node (and every restart) learns it from the log.",
            "remove: refused for the leader (transfer leadership first) and when the voters left that the leader hears "
                + "from would not form a quorum.",
            "add --witness: the new node joins as a witness (issue 19): it votes and acknowledges, never serves "
                + "clients, and keeps entry bodies only until both data members hold them.",
            "witness: turns data member NODE into a witness.",
            "promote: turns witness NODE into a data member, online: the leader removes it from the voters, replaces its "
                + "log with a snapshot taken for it (the bodies it dropped are in no log of its own), catches it up, "
                + "then makes it a data voter; this command waits for that. Until then the data members alone are "
                + "the voters, so each of them must answer. Needs a state machine that takes snapshots."})
    static final class Member extends Base {
        @Parameters(index = "0", description = "add, remove, witness or promote")
        String action;

        @Parameters(index = "1", description = "the node id")
        String node;

        @Option(names = "--address", description = "add: the new node's Raft address, host:port")
        String address;

        @Option(names = "--witness", description = "add: the new node joins as a witness")
        boolean witness;

        @Option(names = "--wait-ms", defaultValue = "120000",
            description = "add: how long to wait for the new node to catch up (default: ${DEFAULT-VALUE})")
        long waitMs;

        @Override
        int run(RaftClient client) throws Exception {
            if (!List.of("add", "remove", "witness", "promote").contains(action)) {
                spec.commandLine().getErr().println("error: action must be add, remove, witness or promote, not '"
                    + action + "'");
                return 2;
            }
            boolean promote = action.equals("promote");
            if (promote && (witness || address != null)) {
                spec.commandLine().getErr().println("error: promote takes neither --witness nor --address (the "
                    + "witness keeps its address)");
                return 2;
            }
            if (node.isEmpty() || node.indexOf(',') >= 0 || node.indexOf('=') >= 0 || node.startsWith("!")
                || node.startsWith("^")) {
                spec.commandLine().getErr().println("error: node id '" + node + "' must not be empty nor hold ',' or "
                    + "'=' nor start with '!' or '^'");
                return 2;
            }
            if (action.equals("witness")) {
                ClientProtocol.Response r = client.changeMembership("!" + node, false).get();
                return switch (r.status()) {
                    case OK -> {
                        out().println(node + " becomes a witness at index " + r.index());
                        yield 0;
                    }
                    case NOT_MEMBER -> fail(node + " cannot become a witness of group " + group + " (not a data "
                        + "member, the leader, or the witnesses would not be outnumbered); nothing changed");
                    case CHANGE_IN_PROGRESS -> fail("another membership change of group " + group + " is in "
                        + "progress; try again when it is done; nothing changed");
                    default -> report(r, "");
                };
            }
            if (action.equals("remove")) {
                ClientProtocol.Response r = client.changeMembership(node, false).get();
                return switch (r.status()) {
                    case OK -> {
                        out().println("remove " + node + " proposed at index " + r.index());
                        yield 0;
                    }
                    case NOT_MEMBER -> fail(node + " is not a voter of group " + group + " (or is its last one); "
                        + "nothing changed");
                    case IS_LEADER -> fail(node + " leads group " + group + "; hand leadership to another voter first "
                        + "(dledger-cli leadership-transfer), then remove it; nothing changed");
                    case NO_QUORUM -> fail("removing " + node + " would leave fewer reachable voters than a quorum "
                        + "of group " + group + "; nothing changed");
                    case CHANGE_IN_PROGRESS -> fail("another membership change of group " + group + " is in "
                        + "progress; try again when it is done; nothing changed");
                    default -> report(r, "");
                };
            }
            if (address != null) {
                try {
                    dev.dledger.raft.core.Membership.checkAddress(node, address);
                    Peers.parse(node + "-" + address);
                } catch (IllegalArgumentException e) {
                    spec.commandLine().getErr().println("error: --address " + address + ": " + e.getMessage());
                    return 2;
                }
            }
            String peer = (promote ? "^" : witness ? "!" : "") + (address == null ? node : node + "=" + address);
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMs);
            boolean proposed = false;
            long lastLag = Long.MIN_VALUE;
            long nextLagPrint = 0;
            while (true) {
                ClientProtocol.Response r = client.changeMembership(peer, true).get();
                switch (r.status()) {
                    case ALREADY_MEMBER:
                        // After CATCHING_UP the leader made it a voter by itself, between two of our requests.
                        if (!proposed && lastLag == Long.MIN_VALUE) {
                            return fail(promote ? node + " is a data member of group " + group + " already, or its "
                                + "leader; nothing changed" : witness ? node + " is already a member of group " + group
                                + " (a data member or a witness; 'member witness " + node + "' turns a data member into "
                                + "a witness); nothing changed" : node + " is already a voter of group " + group
                                + "; nothing changed");
                        }
                        out().println(node + " is a voter of group " + group);
                        return 0;
                    case OK:
                        proposed = true;
                        out().println(node + " caught up; added as a " + (promote ? "data member" : "voter")
                            + " at index " + r.index());
                        break;
                    case CATCHING_UP:
                        if (System.nanoTime() >= nextLagPrint || lastLag == Long.MIN_VALUE) {
                            lastLag = printLag(client, r.leaderHint(), lastLag);
                            nextLagPrint = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                        }
                        break;
                    case CHANGE_IN_PROGRESS:
                        if (!proposed && lastLag == Long.MIN_VALUE) {
                            return fail("another membership change of group " + group + " is in progress (a node "
                                + "being caught up, or a change not committed yet); try again when it is done");
                        }
                        break;
                    case NO_QUORUM:
                        return fail("the data members of group " + group + " that its leader hears from are no quorum "
                            + "of the voters without " + node + "; nothing changed");
                    case INVALID:
                        if (promote) {
                            return fail(node + " cannot be promoted in group " + group + ": the state machine of its "
                                + "leader takes no snapshots; nothing changed");
                        }
                        if (witness) {
                            return fail("adding witness " + node + " would leave group " + group + " with no more data "
                                + "members than witnesses; nothing changed");
                        }
                        return report(r, "");
                    default:
                        return report(r, "");
                }
                if (System.nanoTime() > deadline) {
                    return fail(node + " did not " + (proposed ? "become a voter" : "catch up") + " within " + waitMs
                        + " ms (is it running, and reachable at " + (address == null ? "the address the nodes know "
                        + "for it; --address gives one" : address) + "?); the leader keeps trying until its "
                        + "leadership changes; run this again to follow it");
                }
                TimeUnit.MILLISECONDS.sleep(200);
            }
        }

        private int fail(String message) {
            spec.commandLine().getErr().println("error: " + message);
            return 1;
        }

        /** Prints the new node's lag behind the leader when it changed; returns it. */
        private long printLag(RaftClient client, String leaderHint, long last) throws Exception {
            String leader = leaderHint;
            if (leader == null) {
                return last == Long.MIN_VALUE ? -1 : last;
            }
            ClientProtocol.Response at;
            try {
                at = client.metadata(leader).get(timeoutMs, TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.TimeoutException | ExecutionException e) {
                return last == Long.MIN_VALUE ? -1 : last;
            }
            long lag = -1;
            for (ClientProtocol.PeerLag p : at.followers()) {
                if (p.id().equals(node)) {
                    lag = p.match() < 0 ? -1 : Math.max(0, at.lastIndex() - p.match());
                }
            }
            if (lag != last) {
                out().println(node + " catching up: " + (lag < 0 ? "no answer from it yet (is it started?)"
                    : "lag " + lag + " entries"));
                out().flush();
            }
            return lag;
        }
    }
}
