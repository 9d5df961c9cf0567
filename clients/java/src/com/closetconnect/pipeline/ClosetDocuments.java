package com.closetconnect.pipeline;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * What the cloth pipeline sends the app's backend (contract/v1/*.schema.json), as records whose
 * component names are the JSON field names. Jackson (Spring Boot: jackson-datatype-jsr310 on, unknown
 * fields ignored) maps JSON onto them as they are; without Jackson, {@code from(Map)} takes what
 * {@link Json#parse} gives. Optional fields are null when absent. A document of a newer
 * schemaVersion than {@link #SCHEMA_VERSION} may mean something else: refuse it (README, "For the backend").
 */
public final class ClosetDocuments {
    /** The schemaVersion these records were written for. */
    public static final int SCHEMA_VERSION = 1;

    private ClosetDocuments() {
    }

    /**
     * How a job ended: the results topic, the webhook's body and result.json. The image fields
     * ({@code ...Url}, the items' {@code url} and {@code thumbnailUrl}) are links, signed for that
     * delivery, only in the webhook's body (and the status answer's result); on the results topic and in
     * result.json they name the job's files relative to its results folder ({@code items/0.png}). Take
     * links from the webhook or the status function, never from the topic.
     */
    public record ResultDocument(int schemaVersion, String jobId, String clothId, String userId, boolean success,
                                 String errorCode, String errorMessage, String imageType, String suggestedCategory,
                                 String segmentationLabel, Long areaPixels, String removedBgImageUrl,
                                 String segmentedImageUrl, String inpaintedImageUrl,
                                 List<SegmentedItem> allSegmentedItems, List<ExpandedItem> allExpandedItems,
                                 Map<String, Long> timings, Map<String, String> providers, boolean cacheHit,
                                 String pipelineVersion, Long uploadGeneration, Instant uploadedAt, Instant finishedAt) {
        public static ResultDocument from(Map<String, Object> m) {
            return new ResultDocument(version(m), str(m, "jobId"), str(m, "clothId"), str(m, "userId"),
                    bool(m, "success"), str(m, "errorCode"), str(m, "errorMessage"), str(m, "imageType"),
                    str(m, "suggestedCategory"), str(m, "segmentationLabel"), lng(m, "areaPixels"),
                    str(m, "removedBgImageUrl"), str(m, "segmentedImageUrl"), str(m, "inpaintedImageUrl"),
                    list(m, "allSegmentedItems", v -> SegmentedItem.from(object(v))),
                    list(m, "allExpandedItems", v -> ExpandedItem.from(object(v))),
                    map(m, "timings", v -> ((Number) v).longValue()), map(m, "providers", v -> (String) v),
                    bool(m, "cacheHit"), str(m, "pipelineVersion"), lng(m, "uploadGeneration"),
                    instant(m, "uploadedAt"), instant(m, "finishedAt"));
        }
    }

    /** One garment, largest first; bbox is left, top, right, bottom in the working image. */
    public record SegmentedItem(String label, String category, Double confidence, Long areaPixels, List<Long> bbox,
                                String url, String thumbnailUrl) {
        public static SegmentedItem from(Map<String, Object> m) {
            Number confidence = (Number) m.get("confidence");
            return new SegmentedItem(str(m, "label"), str(m, "category"),
                    confidence == null ? null : confidence.doubleValue(), lng(m, "areaPixels"),
                    list(m, "bbox", v -> ((Number) v).longValue()), str(m, "url"), str(m, "thumbnailUrl"));
        }
    }

    /** A garment's product shot, or (expanded false) its crop and the note saying why not. */
    public record ExpandedItem(String label, String url, boolean expanded, String note) {
        public static ExpandedItem from(Map<String, Object> m) {
            return new ExpandedItem(str(m, "label"), str(m, "url"), bool(m, "expanded"), str(m, "note"));
        }
    }

    /** How far a job is; apply an event only when its sequence is above the last one applied. */
    public record ProgressEvent(int schemaVersion, String jobId, String clothId, String userId, String status,
                                String currentStep, int progressPercentage, long sequence, Instant timestamp) {
        public static ProgressEvent from(Map<String, Object> m) {
            Long sequence = lng(m, "sequence");
            return new ProgressEvent(version(m), str(m, "jobId"), str(m, "clothId"), str(m, "userId"),
                    str(m, "status"), str(m, "currentStep"), lng(m, "progressPercentage").intValue(),
                    sequence == null ? 0 : sequence, instant(m, "timestamp"));
        }
    }

    private static int version(Map<String, Object> m) {
        Long version = lng(m, "schemaVersion");
        int v = version == null ? SCHEMA_VERSION : version.intValue();
        if (v > SCHEMA_VERSION) {
            throw new IllegalArgumentException("schemaVersion " + v + " is newer than these records (" + SCHEMA_VERSION + ")");
        }
        return v;
    }

    private static String str(Map<String, Object> m, String key) {
        return (String) m.get(key);
    }

    private static boolean bool(Map<String, Object> m, String key) {
        return Boolean.TRUE.equals(m.get(key));
    }

    private static Long lng(Map<String, Object> m, String key) {
        Object value = m.get(key);
        return value == null ? null : ((Number) value).longValue();
    }

    private static Instant instant(Map<String, Object> m, String key) {
        Object value = m.get(key);
        return value == null ? null : Instant.parse((String) value);
    }

    @SuppressWarnings("unchecked")
    private static <T> List<T> list(Map<String, Object> m, String key, Function<Object, T> each) {
        Object value = m.get(key);
        if (value == null) {
            return List.of();
        }
        return ((List<Object>) value).stream().map(each).toList();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> object(Object value) {
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    private static <T> Map<String, T> map(Map<String, Object> m, String key, Function<Object, T> each) {
        Object value = m.get(key);
        if (value == null) {
            return Map.of();
        }
        Map<String, T> out = new java.util.LinkedHashMap<>();
        ((Map<String, Object>) value).forEach((k, v) -> out.put(k, each.apply(v)));
        return out;
    }
}
