package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Manifest describes a finished output. It is written next to the output as
// OUTPUT.manifest.json once a stage has completed, and removed when a stage
// starts appending to the output again.
type Manifest struct {
	Output      string         `json:"output"`
	Command     string         `json:"command"`
	Version     string         `json:"version"`
	Rows        int            `json:"rows"`          // rows in the output
	Existing    int            `json:"existing_rows"` // rows found from earlier runs
	Written     int            `json:"written_rows"`  // rows written by the last run
	Errors      int            `json:"errors"`        // rows with an `error` field written by the last run
	Counts      map[string]int `json:"counts,omitempty"`
	Config      any            `json:"config,omitempty"`
	Started     time.Time      `json:"started"`
	Finished    time.Time      `json:"finished"`
	WallSeconds float64        `json:"wall_seconds"`
}

// ManifestPath returns where the manifest of an output lives.
func ManifestPath(output string) string { return output + ".manifest.json" }

// WriteManifest writes m atomically next to its output.
func WriteManifest(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	path := ManifestPath(m.Output)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// ReadManifest reads the manifest of an output; ok is false when there is
// none (the output is not known to be complete).
func ReadManifest(output string) (m *Manifest, ok bool, err error) {
	b, err := os.ReadFile(ManifestPath(output))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	m = &Manifest{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, false, fmt.Errorf("manifest %s: %w", ManifestPath(output), err)
	}
	return m, true, nil
}

// RemoveManifest marks an output as incomplete.
func RemoveManifest(output string) error {
	err := os.Remove(ManifestPath(output))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
