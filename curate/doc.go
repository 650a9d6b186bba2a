// Package curate turns graded solutions into training sets: it aggregates
// majority answers, filters, deduplicates (exact and MinHash-LSH),
// decontaminates against benchmarks (13-gram overlap, and retrieval plus an
// LLM check as OpenMathInstruct-2 did), downsamples fairly, and exports SFT
// and preference formats, counting what every step removed.
//
// A curation is a list of steps run over a Dataset held in memory:
//
//	d := curate.NewDataset(rows)
//	p, err := curate.ParsePipeline(yamlBytes)
//	err = p.Run(ctx, d, env)
//	// d.Rows are kept, d.Removed carry `removed_by` and `removed_reason`,
//	// d.Funnel says how many rows each step removed.
//
// RunFile curates a file of any size in bounded memory (FileOptions.
// MemoryLimit): rows are split by problem into partitions under the
// output's cache folder, each curated as a Dataset; steps that compare rows
// across problems meet through hash-bucketed record files. Shards exposes
// the same work as jobs of independent tasks (split, pass-N, decide-N,
// write) for `crucible run` to spread over processes or Slurm. Every way
// gives the same output, removed rows and report, byte for byte.
package curate
