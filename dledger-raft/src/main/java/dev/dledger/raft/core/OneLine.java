package dev.dledger.raft.core;

/** Error messages that quote values from outside (configuration, frames), kept to one line. */
public final class OneLine {

    private OneLine() {
    }

    /** {@code s} with line breaks and other control characters (as in a quoted value) shown escaped. */
    public static String of(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\n') {
                out.append("\\n");
            } else if (c == '\r') {
                out.append("\\r");
            } else if (Character.isISOControl(c)) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
