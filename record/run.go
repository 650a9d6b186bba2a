package record

import "time"

// RunManifest is a pipeline run's runs/NAME/manifest.json, as `crucible
// run` writes it and `crucible inspect` reads it.
type RunManifest struct {
	Name    string                    `json:"name"`
	Version string                    `json:"version"`
	Config  string                    `json:"config"` // the pipeline file as given
	Stages  map[string]*StageManifest `json:"stages"`
	Updated time.Time                 `json:"updated"`
}

// StageManifest is one stage's record.
type StageManifest struct {
	Status   string    `json:"status"` // pending, running, done, failed, interrupted
	Hash     string    `json:"hash"`
	Command  []string  `json:"command"`
	Output   string    `json:"output"`
	Rows     int       `json:"rows"`
	Shards   int       `json:"shards,omitempty"`
	Launcher string    `json:"launcher"`
	Started  time.Time `json:"started,omitempty"`
	Finished time.Time `json:"finished,omitempty"`
	Seconds  float64   `json:"seconds,omitempty"`
	Error    string    `json:"error,omitempty"`
	Jobs     []string  `json:"slurm_jobs,omitempty"`
}
