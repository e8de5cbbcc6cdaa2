package dev.dledger.raft.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.MemoryStorageAccess;
import dev.dledger.raft.server.NodeOptions;
import dev.dledger.raft.server.RaftGroupNode;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The client commands of {@code dledger} against a running three-node group. */
class ClientCommandsTest {

    private final List<NettyTransport> transports = new ArrayList<>();
    private final List<RaftGroupNode> nodes = new ArrayList<>();
    private String peers;

    @BeforeEach
    void startGroup() {
        String[] ids = {"n0", "n1", "n2"};
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        StringBuilder list = new StringBuilder();
        for (String id : ids) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 20);
            transports.add(t);
            addresses.put(id, t.localAddress());
            list.append(list.length() == 0 ? "" : ";").append(id).append("-127.0.0.1:").append(t.localAddress().getPort());
        }
        peers = list.toString();
        for (int i = 0; i < ids.length; i++) {
            nodes.add(new RaftGroupNode(NodeOptions.defaults("g", ids[i]), Membership.of(ids),
                MemoryStorageAccess.open(), StateMachine.NONE, transports.get(i)));
            transports.get(i).setPeers("g", addresses);
        }
        await().atMost(Duration.ofSeconds(10))
            .until(() -> nodes.stream().anyMatch(n -> n.status().role() == Role.LEADER));
    }

    @AfterEach
    void stop() {
        nodes.forEach(RaftGroupNode::close);
        transports.forEach(NettyTransport::close);
    }

    private String[] run(int expectedCode, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        assertEquals(expectedCode, code, "out: " + out + " err: " + err);
        return new String[] {out.toString(), err.toString()};
    }

    @Test
    void appendThenGetThenStatus() {
        String[] appended = run(0, "append", "-g", "g", "-p", peers, "-d", "hello", "-c", "3");
        assertEquals(3, appended[0].lines().filter(l -> l.startsWith("appended index=")).count(), appended[0]);
        String[] got = run(0, "get", "-g", "g", "-p", peers, "-i", "1");
        assertTrue(got[0].contains("type=NORMAL body=hello"), got[0]);
        String[] status = run(0, "status", "-g", "g", "-p", peers);
        assertEquals(1, status[0].lines().filter(l -> l.contains("role=LEADER")).count(), status[0]);
        assertEquals(2, status[0].lines().filter(l -> l.trim().startsWith("follower ")).count(), status[0]);
    }

    @Test
    void preferredLeaderHandsLeadershipBackOnceCaughtUp() {
        run(0, "append", "-g", "g", "-p", peers, "-d", "x", "-c", "2");
        RaftGroupNode leader = nodes.stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
        String[] already = run(0, "preferred-leader", "-g", "g", "-p", peers, "--id", leader.id());
        assertEquals(leader.id() + " leads already (term " + leader.status().term() + ")", already[0].strip());
        String target = nodes.stream().map(RaftGroupNode::id).filter(id -> !id.equals(leader.id())).findFirst()
            .orElseThrow();
        String[] last = new String[2];
        await("preferred-leader " + target).atMost(Duration.ofSeconds(20)).until(() -> {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true),
                "preferred-leader", "-g", "g", "-p", peers, "--id", target);
            last[0] = out.toString();
            last[1] = err.toString();
            return code == 0;
        });
        System.out.println("preferred-leader said: " + last[0].strip() + last[1].strip());
        await().atMost(Duration.ofSeconds(10)).until(() -> nodes.stream()
            .anyMatch(n -> n.id().equals(target) && n.status().role() == Role.LEADER));
        String[] unknown = run(2, "preferred-leader", "-g", "g", "-p", peers, "--id", "n9");
        assertEquals("error: --id n9 is not one of --peers", unknown[1].strip());
    }

    @Test
    void wrongInputGetsAOneLineError() {
        String[] bad = run(2, "member", "-g", "g", "-p", peers, "demote", "n1");
        assertTrue(bad[1].contains("action must be add, remove, witness or promote, not 'demote'"), bad[1]);
        String[] promoteWithAddress = run(2, "member", "-g", "g", "-p", peers, "promote", "n1", "--address",
            "127.0.0.1:1");
        assertTrue(promoteWithAddress[1].contains("promote takes neither --witness nor --address"),
            promoteWithAddress[1]);
        String[] missing = run(1, "get", "-g", "g", "-p", peers, "-i", "999");
        assertTrue(missing[1].contains("NOT_FOUND"), missing[1]);
    }

    @Test
    void badMembershipChangesGetAOneLineErrorAndChangeNothing() {
        RaftGroupNode leader = nodes.stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
        String follower = nodes.stream().map(RaftGroupNode::id).filter(id -> !id.equals(leader.id())).findFirst()
            .orElseThrow();
        String[] exists = run(1, "member", "add", follower, "--address", "127.0.0.1:1", "-g", "g", "-p", peers);
        assertEquals("error: " + follower + " is already a voter of group g; nothing changed", exists[1].strip());
        String[] leads = run(1, "member", "remove", leader.id(), "-g", "g", "-p", peers);
        assertEquals("error: " + leader.id() + " leads group g; hand leadership to another voter first (dledger-cli "
            + "leadership-transfer), then remove it; nothing changed", leads[1].strip());
        String[] unknown = run(1, "member", "remove", "n9", "-g", "g", "-p", peers);
        assertEquals("error: n9 is not a voter of group g (or is its last one); nothing changed", unknown[1].strip());
        String[] badAddress = run(2, "member", "add", "n3", "--address", "a,b", "-g", "g", "-p", peers);
        assertTrue(badAddress[1].startsWith("error: --address a,b: "), badAddress[1]);
        assertEquals(List.of("n0", "n1", "n2"), leader.status().voters());
    }

    @Test
    void witnessAddsThatAreRefusedSayWhy() {
        RaftGroupNode leader = nodes.stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
        String follower = nodes.stream().map(RaftGroupNode::id).filter(id -> !id.equals(leader.id())).findFirst()
            .orElseThrow();
        String[] exists = run(1, "member", "add", follower, "--witness", "-g", "g", "-p", peers);
        assertEquals("error: " + follower + " is already a member of group g (a data member or a witness; 'member "
            + "witness " + follower + "' turns a data member into a witness); nothing changed", exists[1].strip());
        run(0, "member", "witness", follower, "-g", "g", "-p", peers);
        String[] outnumbered = run(1, "member", "add", "n5", "--witness", "--address", "127.0.0.1:1", "-g", "g",
            "-p", peers);
        assertEquals("error: adding witness n5 would leave group g with no more data members than witnesses; nothing "
            + "changed", outnumbered[1].strip());
        assertEquals(List.of("n0", "n1", "n2"), leader.status().voters());
    }

    @Test
    void promotionsThatAreRefusedSayWhy() {
        RaftGroupNode leader = nodes.stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
        String follower = nodes.stream().map(RaftGroupNode::id).filter(id -> !id.equals(leader.id())).findFirst()
            .orElseThrow();
        run(0, "member", "witness", follower, "-g", "g", "-p", peers);
        // These nodes' state machine takes no snapshots: the bodies a witness dropped cannot be replaced.
        String[] noSnapshots = run(1, "member", "promote", follower, "-g", "g", "-p", peers);
        assertEquals("error: " + follower + " cannot be promoted in group g: the state machine of its leader takes no "
            + "snapshots; nothing changed", noSnapshots[1].strip());
        assertEquals(List.of("n0", "n1", "n2"), leader.status().voters(), "the witness is still a voter");
    }
}
