package inspect

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/crucible-ml/crucible/curate"
	"github.com/crucible-ml/crucible/record"
)

// RunManifest is runs/NAME/manifest.json (record.RunManifest).
type RunManifest = record.RunManifest

// StageManifest is one stage of a RunManifest.
type StageManifest = record.StageManifest

// Stage is one output of a run as the viewer shows it.
type Stage struct {
	Name    string
	Command string // the crucible sub-command (generate, grade, curate, eval, ...)
	Status  string // pending, running, done, failed; "done" for an output with a manifest
	Rows    int    // rows the manifest reports (done stages)
	Lines   int    // complete lines in the output now
	Bytes   int64
	Seconds float64
	Started time.Time
	Error   string
	Errors  int // rows with an `error` field, from the output's manifest

	Output  string // path of the rows
	Metrics string // metrics.json beside the rows (eval), or ""
	Report  string // curate's report JSON, or ""
	Removed string // curate's removed rows, or ""
	Kind    string // rows, graded, eval, curate, pairs
}

// Run is a run folder, a folder of outputs or a single file.
type Run struct {
	Name     string
	Dir      string
	Manifest *RunManifest // nil when the root is not a pipeline run
	Stages   []*Stage
	Updated  time.Time
}

// Live reports whether some stage is still running.
func (r *Run) Live() bool {
	for _, s := range r.Stages {
		if s.Status == "running" || s.Status == "pending" {
			return true
		}
	}
	return false
}

// LoadRun reads a run folder (with manifest.json), any folder holding
// outputs (an eval folder, a folder of JSONL files) or one rows file.
func LoadRun(path string) (*Run, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		r := &Run{Name: filepath.Base(path), Dir: filepath.Dir(path)}
		r.Stages = []*Stage{stageOf(filepath.Base(path), path, nil)}
		return r, nil
	}
	r := &Run{Name: filepath.Base(path), Dir: path}
	b, err := os.ReadFile(filepath.Join(path, "manifest.json"))
	switch {
	case err == nil:
		m := &RunManifest{}
		if err := json.Unmarshal(b, m); err != nil {
			return nil, err
		}
		r.Manifest, r.Updated = m, m.Updated
		if m.Name != "" {
			r.Name = m.Name
		}
		names := make([]string, 0, len(m.Stages))
		for n := range m.Stages {
			names = append(names, n)
		}
		// Stages in the order they started, pending ones last.
		sort.SliceStable(names, func(i, j int) bool {
			a, b := m.Stages[names[i]], m.Stages[names[j]]
			if a.Started.IsZero() != b.Started.IsZero() {
				return !a.Started.IsZero()
			}
			if !a.Started.Equal(b.Started) {
				return a.Started.Before(b.Started)
			}
			return names[i] < names[j]
		})
		for _, n := range names {
			sm := m.Stages[n]
			out := sm.Output
			if out == "" || !within(path, out) {
				out = filepath.Join(path, n, "output.jsonl")
			}
			r.Stages = append(r.Stages, stageOf(n, out, sm))
		}
	case errors.Is(err, os.ErrNotExist):
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			name := e.Name()
			switch {
			case e.IsDir():
				if out := filepath.Join(path, name, "output.jsonl"); exists(out) {
					r.Stages = append(r.Stages, stageOf(name, out, nil))
				}
			case isRows(name) && !strings.HasSuffix(name, ".removed.jsonl"):
				r.Stages = append(r.Stages, stageOf(name, filepath.Join(path, name), nil))
			}
		}
	default:
		return nil, err
	}
	return r, nil
}

func isRows(name string) bool {
	return strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".parquet")
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// within reports whether p is inside dir (both cleaned, no symlinks followed).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func stageOf(name, out string, sm *StageManifest) *Stage {
	s := &Stage{Name: name, Output: out, Status: "pending"}
	if sm != nil {
		s.Status, s.Rows, s.Seconds, s.Started, s.Error = sm.Status, sm.Rows, sm.Seconds, sm.Started, sm.Error
		if len(sm.Command) > 1 {
			s.Command = sm.Command[1]
		}
	}
	if fi, err := os.Stat(out); err == nil {
		s.Bytes = fi.Size()
	}
	if m, ok, _ := record.ReadManifest(out); ok {
		if sm == nil {
			s.Status, s.Rows, s.Seconds, s.Started = "done", m.Rows, m.WallSeconds, m.Started
		}
		if s.Command == "" {
			s.Command = m.Command
		}
		s.Errors = m.Errors
	} else if sm == nil && s.Bytes > 0 {
		s.Status = "running"
	}
	dir := filepath.Dir(out)
	base := strings.TrimSuffix(strings.TrimSuffix(out, ".jsonl"), ".parquet")
	if p := filepath.Join(dir, "metrics.json"); exists(p) {
		s.Metrics = p
	}
	if p := base + ".report.json"; exists(p) {
		s.Report = p
	}
	if p := base + ".removed.jsonl"; exists(p) {
		s.Removed = p
	}
	s.Kind = "rows"
	switch {
	case s.Metrics != "" || s.Command == "eval":
		s.Kind = "eval"
	case s.Report != "" || s.Command == "curate":
		s.Kind = "curate"
	default:
		if row := firstRow(out); row != nil {
			switch {
			case row.Has("chosen") && row.Has("rejected"):
				s.Kind = "pairs"
			case row.Has("is_correct"):
				s.Kind = "graded"
			}
		}
	}
	return s
}

// firstRow reads the first row of a file, or nil.
func firstRow(path string) *record.Row {
	in, err := record.Open(path)
	if err != nil {
		return nil
	}
	defer in.Close()
	if in.Next() {
		return in.Row()
	}
	return nil
}

// ReadCurateReport reads the report curate writes beside its output.
func ReadCurateReport(path string) (*curate.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rep := &curate.Report{}
	if err := json.Unmarshal(b, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// ReadMetrics reads an eval's metrics.json: flat metric values plus
// by_subject and by_level groups of the same shape.
func ReadMetrics(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(b, &m)
}
