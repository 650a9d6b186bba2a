package synth

import (
	"context"
	"log/slog"

	"github.com/crucible-ml/crucible/record"
	"github.com/crucible-ml/crucible/stage"
)

// mapRows runs fn on every input row whose (id, sample) the output lacks
// (see stage.Map) and adds the step to the report.
func (c *Common) mapRows(ctx context.Context, rep *Report, name, input, output string, fn func(ctx context.Context, row *record.Row) error) error {
	st, err := stage.Map(ctx, stage.MapOptions{
		Input: input, Output: output, Shard: c.Shard, Limit: c.Limit, Concurrency: c.Concurrency,
		RetryErrors: c.RetryErrors, Label: name,
	}, fn)
	s := StageStats{Name: name, Output: output, Existing: st.Existing, Written: st.Written, Skipped: st.Skipped, Errors: st.Errors}
	rep.Stages = append(rep.Stages, s)
	rep.Errors += s.Errors
	if st.FirstError != "" && rep.FirstError == "" {
		rep.FirstError = st.FirstError
	}
	if err != nil {
		return err
	}
	slog.Debug("synth step finished", "step", name, "written", s.Written, "skipped", s.Skipped, "errors", s.Errors)
	return nil
}
