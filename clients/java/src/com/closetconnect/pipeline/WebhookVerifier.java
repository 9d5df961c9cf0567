package com.closetconnect.pipeline;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Verifies the cloth pipeline's webhook signature (shared/runtime/webhook.py signs it):
 * {@code X-Closet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" under the shared secret>}.
 *
 * <p>Verify the raw body bytes as received, before any JSON parsing. A request is refused when the
 * header is malformed, its timestamp is outside the window, the signature does not match (compared in
 * constant time), or the same signature was already accepted within the window (a replay). The replay
 * memory is this object's: several receiver instances need a shared one (e.g. Redis SET NX EX on v1).
 * Thread-safe; one instance per secret.
 */
public final class WebhookVerifier {
    public static final String HEADER = "X-Closet-Signature";
    public static final Duration DEFAULT_TOLERANCE = Duration.ofMinutes(5);
    private static final Pattern SIGNATURE = Pattern.compile("t=([0-9]{1,12}),v1=([0-9a-f]{64})");

    public enum Reason { MALFORMED, OUTSIDE_WINDOW, BAD_SIGNATURE, REPLAYED }

    /** The request is not to be trusted; {@code reason} is stable, the message is for people. */
    public static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;
        public final Reason reason;

        Refused(Reason reason, String message) {
            super(reason + ": " + message);
            this.reason = reason;
        }
    }

    private final byte[] secret;
    private final long toleranceS;
    private final Clock clock;
    private final Map<String, Long> accepted = new HashMap<>(); // v1 -> t, within the window

    public WebhookVerifier(String secret) {
        this(secret, DEFAULT_TOLERANCE, Clock.systemUTC());
    }

    public WebhookVerifier(String secret, Duration tolerance, Clock clock) {
        if (secret == null || secret.isEmpty()) {
            throw new IllegalArgumentException("the webhook secret (CLOSET_WEBHOOK_SECRET) is empty");
        }
        this.secret = secret.getBytes(StandardCharsets.UTF_8);
        this.toleranceS = tolerance.getSeconds();
        this.clock = clock;
    }

    /** Returns normally when the request was signed with our secret, is fresh and was not seen before. */
    public void verify(byte[] body, String header) throws Refused {
        Matcher match = SIGNATURE.matcher(header == null ? "" : header.trim());
        if (!match.matches()) {
            throw new Refused(Reason.MALFORMED, "no t=<seconds>,v1=<64 hex digits> in " + HEADER);
        }
        long timestamp = Long.parseLong(match.group(1));
        long now = clock.instant().getEpochSecond();
        if (Math.abs(now - timestamp) > toleranceS) {
            throw new Refused(Reason.OUTSIDE_WINDOW, "signed " + (now - timestamp) + " s ago; the window is " + toleranceS + " s");
        }
        byte[] given = HexFormat.of().parseHex(match.group(2));
        if (!MessageDigest.isEqual(sign(timestamp, body), given)) { // constant time: no early exit to time
            throw new Refused(Reason.BAD_SIGNATURE, "the body or the secret differs from what was signed");
        }
        synchronized (accepted) {
            // What the window refuses anyway need not be remembered.
            accepted.values().removeIf(t -> Math.abs(now - t) > toleranceS);
            if (accepted.putIfAbsent(match.group(2), timestamp) != null) {
                throw new Refused(Reason.REPLAYED, "this signature was already accepted");
            }
        }
    }

    private byte[] sign(long timestamp, byte[] body) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            mac.update((timestamp + ".").getBytes(StandardCharsets.UTF_8));
            return mac.doFinal(body);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
        }
    }
}
