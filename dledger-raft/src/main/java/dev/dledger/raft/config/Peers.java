package dev.dledger.raft.config;

import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;

/** Parses DLedger's peer list, {@code n0-host:port;n1-host:port;...}, with errors that say what is wrong. */
public final class Peers {

    private Peers() {
    }

    /**
     * Parses a peer list into id to address, in the order given.
     *
     * @throws IllegalArgumentException naming the bad item: missing dash or colon, bad port, duplicate id or address
     */
    public static Map<String, InetSocketAddress> parse(String peers) {
        if (peers == null || peers.isBlank()) {
            throw new IllegalArgumentException("peers are empty; expected n0-host:port;n1-host:port;...");
        }
        Map<String, InetSocketAddress> out = new LinkedHashMap<>();
        for (String item : peers.split(";")) {
            String it = item.trim();
            if (it.isEmpty()) {
                continue;
            }
            int dash = it.indexOf('-');
            int colon = it.lastIndexOf(':');
            if (dash <= 0 || colon <= dash + 1 || colon == it.length() - 1) {
                throw new IllegalArgumentException("bad peer '" + it + "'; expected id-host:port");
            }
            String id = it.substring(0, dash);
            String host = it.substring(dash + 1, colon);
            int port;
            try {
                port = Integer.parseInt(it.substring(colon + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad port in peer '" + it + "'");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port " + port + " of peer '" + it + "' is out of range");
            }
            InetSocketAddress address = InetSocketAddress.createUnresolved(host, port);
            if (out.containsKey(id)) {
                throw new IllegalArgumentException("peer id '" + id + "' appears twice");
            }
            for (InetSocketAddress a : out.values()) {
                if (a.getHostString().equals(host) && a.getPort() == port) {
                    throw new IllegalArgumentException("address " + host + ":" + port + " appears twice");
                }
            }
            out.put(id, new InetSocketAddress(host, port));
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("peers are empty; expected n0-host:port;n1-host:port;...");
        }
        return out;
    }
}
