package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crucible-ml/crucible/grade"
	"github.com/crucible-ml/crucible/sandbox"
)

func TestMain(m *testing.M) {
	if sandbox.MaybeRunChild() {
		return
	}
	os.Exit(m.Run())
}

func TestBackend(t *testing.T) {
	res, err := Backend(context.Background(), 200, 8, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.BareRPS <= 0 || res.FullRPS <= 0 || res.Ratio <= 0 {
		t.Fatalf("backend bench measured nothing: %+v", res)
	}
}

func TestGrade(t *testing.T) {
	pairs := GradePairs([]string{"\\frac{1}{2}", "12", " 3,000 "})
	if len(pairs) < 6 {
		t.Fatalf("pairs = %v", pairs)
	}
	for _, p := range pairs {
		if p[0] == " 3,000 " {
			t.Fatalf("gold not trimmed: %q", p[0])
		}
	}
	r := Grade(context.Background(), pairs, grade.DefaultOptions(), 0)
	if r.Pairs != len(pairs) || r.Rounds < 3 || r.Equal == 0 || r.Equal == len(pairs) || r.Slowest <= 0 {
		t.Fatalf("grade bench: %+v", r)
	}
}

func TestReadAnswers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.jsonl")
	os.WriteFile(p, []byte("{\"answer\":\"x\"}\n\n{\"answer\":3}\n{\"answer\":\n"), 0o644)
	if _, err := ReadAnswers(p); err == nil || err.Error()[:len(p)+2] != p+":4" {
		t.Fatalf("err = %v, want %s:4", err, p)
	}
	os.WriteFile(p, []byte("{\"answer\":\"x\"}\n{\"answer\":3}"), 0o644)
	if a, err := ReadAnswers(p); err != nil || len(a) != 2 || a[1] != "3" {
		t.Fatalf("%q %v", a, err)
	}
}

func TestSandbox(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := sandbox.NewPool(ctx, sandbox.Config{WarmWorkers: 2, DefaultTimeout: 5 * time.Second, KillGrace: 500 * time.Millisecond, Preload: []string{}})
	if errors.Is(err, sandbox.ErrNoIsolation) && os.Getenv("CI") != "true" {
		t.Skipf("no isolation on this machine, and CI is not set: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := Sandbox(ctx, p, SandboxOptions{Sessions: 4, Duration: 200 * time.Millisecond, NewSessions: 3, ColdStarts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Executions == 0 || res.NewSessionP50Ms <= 0 || res.ColdStartP50Ms <= 0 {
		t.Fatalf("bench measured nothing: %+v", res)
	}
	if n := len(p.Sessions()); n != 0 {
		t.Errorf("bench left %d sessions", n)
	}
}

func TestCurate(t *testing.T) {
	dir := "../../../shared/data"
	if _, err := os.Stat(filepath.Join(dir, "math", "train.jsonl")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("short")
	}
	res, err := Curate(context.Background(), dir, 2000, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if res.MinHashRows != 2000 || res.MinHashRowsPerSec <= 0 || res.DecontamRows != 5000 || res.DecontamNgrams == 0 {
		t.Fatalf("curate bench: %+v", res)
	}
}
