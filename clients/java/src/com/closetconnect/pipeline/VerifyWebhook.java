package com.closetconnect.pipeline;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Verifies webhook requests as received on the wire (request line, headers, blank line, body), then
 * parses the body into a ResultDocument: one request from stdin, or one per file named, all through
 * one verifier (so a request given twice is a replay). The secret comes from CLOSET_WEBHOOK_SECRET,
 * never the command line. One line per request: "accepted ResultDocument[...]" or "refused REASON: ...";
 * exit status 0 when every request was accepted, 1 otherwise, 2 on a usage error.
 *
 * <pre>CLOSET_WEBHOOK_SECRET=... java -cp CLASSES com.closetconnect.pipeline.VerifyWebhook [REQUEST_FILE...] &lt; request</pre>
 *
 * With --parse result|progress FILE..., it only parses documents (no signature) and prints the records.
 */
public final class VerifyWebhook {
    private VerifyWebhook() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length >= 1 && args[0].equals("--parse")) {
            System.exit(parse(args));
        }
        String secret = System.getenv("CLOSET_WEBHOOK_SECRET");
        if (secret == null || secret.isEmpty()) {
            System.err.println("VerifyWebhook: set CLOSET_WEBHOOK_SECRET");
            System.exit(2);
        }
        WebhookVerifier verifier = new WebhookVerifier(secret);
        boolean all = true;
        if (args.length == 0) {
            all = verifyOne(verifier, System.in.readAllBytes());
        }
        for (String file : args) {
            all &= verifyOne(verifier, Files.readAllBytes(Path.of(file)));
        }
        System.exit(all ? 0 : 1);
    }

    private static boolean verifyOne(WebhookVerifier verifier, byte[] raw) {
        int end = indexOf(raw, "\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        if (end < 0) {
            System.out.println("refused MALFORMED: no blank line after the headers");
            return false;
        }
        String signature = null;
        int length = raw.length - end - 4;
        for (String line : new String(raw, 0, end, StandardCharsets.ISO_8859_1).split("\r\n")) {
            int colon = line.indexOf(':');
            if (colon < 0) {
                continue; // the request line
            }
            String name = line.substring(0, colon).trim();
            String value = line.substring(colon + 1).trim();
            if (name.equalsIgnoreCase(WebhookVerifier.HEADER)) {
                signature = value;
            } else if (name.equalsIgnoreCase("Content-Length")) {
                length = Math.min(length, Integer.parseInt(value));
            }
        }
        byte[] body = Arrays.copyOfRange(raw, end + 4, end + 4 + length);
        try {
            verifier.verify(body, signature);
        } catch (WebhookVerifier.Refused refused) {
            System.out.println("refused " + refused.getMessage());
            return false;
        }
        System.out.println("accepted " + ClosetDocuments.ResultDocument.from(object(new String(body, StandardCharsets.UTF_8))));
        return true;
    }

    private static int parse(String[] args) throws IOException {
        for (String file : Arrays.copyOfRange(args, 2, args.length)) {
            Map<String, Object> document = object(Files.readString(Path.of(file)));
            System.out.println(args[1].equals("progress") ? ClosetDocuments.ProgressEvent.from(document)
                    : ClosetDocuments.ResultDocument.from(document));
        }
        return 0;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(String json) {
        return (Map<String, Object>) Json.parse(json);
    }

    private static int indexOf(byte[] data, byte[] part) {
        outer:
        for (int i = 0; i + part.length <= data.length; i++) {
            for (int j = 0; j < part.length; j++) {
                if (data[i + j] != part[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
