// Every key stored through TransactionSink metadata, with the form of its value and the unit
// that writes it. The change log keeps them under "meta/<key>" (server/log/log_format.h); like
// that file, a change here that an older walfeed could misread is a format change.
#ifndef WALFEED_SERVER_CORE_METADATA_KEYS_H_
#define WALFEED_SERVER_CORE_METADATA_KEYS_H_

namespace walfeed {

// The source (server/source/source.cc) --------------------------------------------------------

// "system <id>, database <name>, slot <slot>": the source whose feed the log holds.
inline constexpr char kSourceIdentityKey[] = "source/identity";
// The initial snapshot: "" (not decided), "running", "done" or "skipped".
inline constexpr char kSnapshotStateKey[] = "snapshot/state";
// The consistent point (LSN text) of the slot the running snapshot created: proof that a slot
// found later is that one (its confirmed_flush_lsn stays there until streaming starts).
inline constexpr char kSnapshotSlotKey[] = "snapshot/slot_consistent_point";
// The tables whose existing rows are in the log (captured_tables.h gives the form).
inline constexpr char kCapturedTablesKey[] = "snapshot/captured_tables";

// Resynchronisations (server/source/source_resync.cc, resync_record.h) -------------------------

// "running" from before a resynchronisation creates its slot until its commit clears it.
inline constexpr char kResyncStateKey[] = "resync/state";
// Why the running one started (the slot's fate), for a start that redoes it.
inline constexpr char kResyncReasonKey[] = "resync/reason";
// The consistent point (LSN text) of the slot the running one created ("" before it exists).
inline constexpr char kResyncSlotKey[] = "resync/slot_consistent_point";
// The newest committed one, a serialized walfeed.v1.Resynchronisation.
inline constexpr char kLastResyncKey[] = "resync/last";

// Named consumers (server/feed/consumer_registry.h) ------------------------------------------

// Every named consumer: "consumers-v1\n", then one "<name>\t<cursor>\t<committed at, Unix
// microseconds>\n" per consumer (names hold no tab or newline; "" is the start of the log).
inline constexpr char kConsumersKey[] = "consumers";

// Backfills (server/backfill/backfill_runner.h) ---------------------------------------------------

// The queued, running and newest finished backfills: a serialized walfeed.v1.BackfillList.
inline constexpr char kBackfillsKey[] = "backfills";

// Push subscriptions (server/push/push_store.h) -----------------------------------------------

// Every push subscription with its cursor, batch in flight and counters: a serialized
// walfeed.v1.StoredPushSubscriptions.
inline constexpr char kPushSubscriptionsKey[] = "push_subscriptions";

// Replication (server/replication/copy_point.h) -------------------------------------------------

// The sequence number (decimal text) of the last replication stream message the log holds.
inline constexpr char kCopySequenceKey[] = "follow.stream_sequence";
// That message's Walfeed-Next: a formatted SegmentStart.
inline constexpr char kCopyNextKey[] = "follow.next";

}  // namespace walfeed

#endif  // WALFEED_SERVER_CORE_METADATA_KEYS_H_
