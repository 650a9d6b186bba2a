// Package record reads and writes the JSON rows that flow between Crucible's
// stages.
//
// A Row keeps every field it was read with, in its original key order, as raw
// JSON; stages only add or replace fields. Rows come from JSON Lines or
// Parquet files (Open), each with a stable identity (ID: the `id` field, else
// a hash of the canonical row) that also decides its shard (Shard).
//
// Output goes through a Writer, which makes every stage resumable: opening an
// existing output reads the (id, sample) keys it already holds, cuts a torn
// last line left by a crash, and appends; a stage skips the keys the writer
// reports as done, so a rerun after kill -9 neither loses nor duplicates a
// row. When a stage finishes it writes a Manifest next to its output.
//
//	in, err := record.Open("problems.jsonl")
//	out, err := record.Create("solutions.jsonl")
//	for in.Next() {
//		row := in.Row()
//		if out.Done(row.ID(), 0) { continue }
//		row.Set("generation", "...")
//		out.Write(row)
//	}
package record
