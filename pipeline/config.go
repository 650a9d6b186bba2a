// Package pipeline runs multi-stage Crucible jobs from one YAML file, on
// one machine or sharded over a Slurm cluster.
//
// A pipeline names stages; each runs one crucible command with its flags,
// reads an earlier stage's output (or a file, or a benchmark) and writes
// into one run folder, runs/NAME/STAGE/. A manifest (runs/NAME/manifest.json)
// records the config, version, status, counts and timings of every stage; a
// rerun skips finished stages and resumes unfinished ones (every stage
// resumes from its own output).
//
//	name: omi1
//	stages:
//	  solve:
//	    command: generate
//	    input: data:gsm8k-train
//	    flags: {prompt: math/code, samples: 4, temperature: 0.7}
//	    shards: 8              # with --launcher slurm: an sbatch array of 8 tasks
//	  graded:
//	    command: grade
//	    input: solve           # the output of stage "solve"
//	  sft:
//	    command: curate
//	    input: graded
//	    flags: {config: curate.yaml}
//	    shards: 16             # split → per-partition passes → decide → write
//	                           # jobs; the same rows as one machine
package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is a pipeline file.
type Config struct {
	Name string `yaml:"name"`
	// Launcher is "local" (default) or "slurm"; a stage may override it.
	Launcher string `yaml:"launcher"`
	// Defaults are flags given to every stage whose command has them.
	Defaults map[string]any `yaml:"defaults"`
	Slurm    SlurmOptions   `yaml:"slurm"`
	Stages   []*Stage       `yaml:"-"`

	path string
}

// SlurmOptions configure sbatch. Stage values override pipeline values.
type SlurmOptions struct {
	Partition   string   `yaml:"partition" json:"partition,omitempty"`
	Account     string   `yaml:"account" json:"account,omitempty"`
	Time        string   `yaml:"time" json:"time,omitempty"`
	Gres        string   `yaml:"gres" json:"gres,omitempty"`
	CPUsPerTask int      `yaml:"cpus_per_task" json:"cpus_per_task,omitempty"`
	Mem         string   `yaml:"mem" json:"mem,omitempty"`
	Extra       []string `yaml:"extra" json:"extra,omitempty"` // extra "#SBATCH ..." lines (or bare options)
	// Setup lines run before the command in every job (module loads,
	// environment).
	Setup []string `yaml:"setup" json:"setup,omitempty"`
}

// Stage is one step of a pipeline.
type Stage struct {
	Name string `yaml:"-"`
	// Command is the crucible command, e.g. "generate" or "synth augment".
	Command string `yaml:"command"`
	// Input is a stage name (its output), "data:NAME" (a benchmark file),
	// or a path. Inputs lists several (joined with commas).
	Input  string   `yaml:"input"`
	Inputs []string `yaml:"inputs"`
	// Flags are the command's flags; lists repeat the flag.
	Flags    map[string]any `yaml:"flags"`
	Launcher string         `yaml:"launcher"`
	// Shards splits the stage over this many Slurm array tasks (--shard i/N).
	Shards int          `yaml:"shards"`
	Slurm  SlurmOptions `yaml:"slurm"`
	// Server is started before the command (in the same job on Slurm) and
	// stopped after it.
	Server *Server `yaml:"server"`

	line int
	kind CommandInfo
}

// Server is a process a stage needs, e.g. `crucible serve` or vLLM.
type Server struct {
	Command string `yaml:"command"`
	// Health is polled until it answers 200 before the stage runs.
	Health  string `yaml:"health"`
	Timeout int    `yaml:"timeout"` // seconds (default 600)
}

// timeoutSeconds is how long the server may take to become healthy.
func (sv *Server) timeoutSeconds() int {
	if sv.Timeout > 0 {
		return sv.Timeout
	}
	return 600
}

// CommandInfo describes a crucible command, as the CLI knows it.
type CommandInfo struct {
	Flags map[string]bool // flags the command accepts
	// OutputDir: --output names a folder, whose OutputFile is the rows.
	OutputDir  bool
	OutputFile string
	// NoInput: the command takes no --input (e.g. eval, which reads
	// --benchmark); InputOptional: it may run without one (synth topics).
	NoInput       bool
	InputOptional bool
	// Rescore names the flag that, given to the command again over the
	// stage's folder, finishes a merged output (eval's --score-only
	// computes the metrics once from all shards' rows): such a command
	// writing a folder may be sharded.
	Rescore string
	// DoneFile, when set, is a file in the stage's folder written last: the
	// stage is finished when the output's manifest and this file exist.
	DoneFile string
	// Check, when set, parses a stage's flag arguments with the command's
	// own flag set, so that a value of the wrong type (temperature: hot)
	// fails when the file is loaded, not when the stage runs.
	Check func(args []string) error
}

// Resolver tells whether a command exists and what it accepts.
type Resolver func(command string) (CommandInfo, error)

var stageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Load reads and validates a pipeline file. Every problem — unknown
// command or flag, a missing input, a cycle — is reported before anything
// runs, with the line of the stage.
func Load(path string, resolve Resolver) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, resolve)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.path = path
	return c, nil
}

// Parse parses and validates a pipeline.
func Parse(data []byte, resolve Resolver) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("want a mapping with name and stages")
	}
	c := &Config{}
	root := doc.Content[0]
	var stages *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			c.Name = v.Value
		case "launcher":
			c.Launcher = v.Value
		case "defaults":
			err = v.Decode(&c.Defaults)
		case "slurm":
			err = decodeStrict(v, &c.Slurm)
		case "stages":
			stages = v
		default:
			err = fmt.Errorf("unknown key %q (have name, launcher, defaults, slurm, stages)", k.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", k.Line, err)
		}
	}
	if !stageName.MatchString(c.Name) {
		return nil, fmt.Errorf("name %q: give the pipeline a name of letters, digits, '-', '_' or '.'", c.Name)
	}
	if err := checkLauncher(c.Launcher); err != nil {
		return nil, err
	}
	if stages == nil || stages.Kind != yaml.MappingNode || len(stages.Content) == 0 {
		return nil, errors.New("`stages` must map stage names to stages")
	}
	for i := 0; i+1 < len(stages.Content); i += 2 {
		k, v := stages.Content[i], stages.Content[i+1]
		s := &Stage{Name: k.Value, line: k.Line}
		if err := decodeStrict(v, s); err != nil {
			return nil, fmt.Errorf("stage %q (line %d): %w", s.Name, k.Line, err)
		}
		if !stageName.MatchString(s.Name) {
			return nil, fmt.Errorf("stage %q (line %d): use letters, digits, '-', '_' or '.'", s.Name, k.Line)
		}
		for _, o := range c.Stages {
			if o.Name == s.Name {
				return nil, fmt.Errorf("stage %q (line %d): defined twice", s.Name, k.Line)
			}
		}
		c.Stages = append(c.Stages, s)
	}
	if err := c.validate(resolve); err != nil {
		return nil, err
	}
	return c, nil
}

func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func checkLauncher(l string) error {
	if l != "" && l != "local" && l != "slurm" {
		return fmt.Errorf("launcher %q: want local or slurm", l)
	}
	return nil
}

// managedFlags are set by the runner, never by the file.
var managedFlags = []string{"input", "output", "shard"}

func (c *Config) validate(resolve Resolver) error {
	byName := map[string]*Stage{}
	for _, s := range c.Stages {
		byName[s.Name] = s
	}
	for _, s := range c.Stages {
		where := fmt.Sprintf("stage %q (line %d)", s.Name, s.line)
		if s.Command == "" {
			return fmt.Errorf("%s: no command", where)
		}
		info, err := resolve(s.Command)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		s.kind = info
		for k := range s.Flags {
			if contains(managedFlags, k) {
				return fmt.Errorf("%s: flag %q is set by the pipeline (use input: / inputs:)", where, k)
			}
			if !info.Flags[k] {
				return fmt.Errorf("%s: crucible %s has no flag --%s", where, s.Command, k)
			}
		}
		if info.Check != nil {
			if err := info.Check(c.flagArgs(s)); err != nil {
				return fmt.Errorf("%s: crucible %s: %w", where, s.Command, err)
			}
		}
		if err := checkLauncher(s.Launcher); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if s.Shards < 0 {
			return fmt.Errorf("%s: shards must be positive", where)
		}
		if _, limited := s.Flags["limit"]; limited && s.Shards > 1 && info.Rescore != "" {
			return fmt.Errorf("%s: --limit applies to each shard; a sharded crucible %s cannot take it", where, s.Command)
		}
		if s.Shards > 1 && s.Command != "curate" && (!info.Flags["shard"] || info.OutputDir && info.Rescore == "") {
			return fmt.Errorf("%s: crucible %s cannot be sharded (it has no --shard, or writes a folder)", where, s.Command)
		}
		ins := s.inputs()
		if info.NoInput && len(ins) > 0 {
			return fmt.Errorf("%s: crucible %s takes no input", where, s.Command)
		}
		if !info.NoInput && !info.InputOptional && len(ins) == 0 {
			return fmt.Errorf("%s: no input (give input: a stage name, data:NAME or a file)", where)
		}
		for _, in := range ins {
			switch {
			case byName[in] != nil:
				if in == s.Name {
					return fmt.Errorf("%s: reads its own output", where)
				}
			case strings.HasPrefix(in, "data:"):
			default:
				if strings.ContainsAny(in, "*?[") {
					if m, _ := filepath.Glob(in); len(m) == 0 {
						return fmt.Errorf("%s: input %q matches no file and names no stage", where, in)
					}
				} else if _, err := os.Stat(in); err != nil {
					return fmt.Errorf("%s: input %q is not a stage of this pipeline nor an existing file", where, in)
				}
			}
		}
	}
	_, err := c.Order()
	return err
}

func (s *Stage) inputs() []string {
	var out []string
	if s.Input != "" {
		out = append(out, s.Input)
	}
	return append(out, s.Inputs...)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// Order returns the stages so that each comes after the stages it reads
// (file order among independent stages); a cycle is an error naming it.
func (c *Config) Order() ([]*Stage, error) {
	byName := map[string]*Stage{}
	for _, s := range c.Stages {
		byName[s.Name] = s
	}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var order []*Stage
	var visit func(s *Stage, path []string) error
	visit = func(s *Stage, path []string) error {
		switch state[s.Name] {
		case 1:
			i := slicesIndex(path, s.Name)
			return fmt.Errorf("stages form a cycle: %s", strings.Join(append(path[i:], s.Name), " -> "))
		case 2:
			return nil
		}
		state[s.Name] = 1
		for _, in := range s.inputs() {
			if dep := byName[in]; dep != nil {
				if err := visit(dep, append(path, s.Name)); err != nil {
					return err
				}
			}
		}
		state[s.Name] = 2
		order = append(order, s)
		return nil
	}
	for _, s := range c.Stages {
		if err := visit(s, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func slicesIndex(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return 0
}

// flagArgs renders a stage's flags (pipeline defaults the command accepts,
// then the stage's own) as command-line arguments in a stable order.
func (c *Config) flagArgs(s *Stage) []string {
	merged := map[string]any{}
	for k, v := range c.Defaults {
		if s.kind.Flags[k] && !contains(managedFlags, k) {
			merged[k] = v
		}
	}
	for k, v := range s.Flags {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		switch v := merged[k].(type) {
		case []any:
			for _, x := range v {
				args = append(args, "--"+k+"="+scalar(x))
			}
		case bool:
			args = append(args, fmt.Sprintf("--%s=%t", k, v))
		case nil:
		default:
			args = append(args, "--"+k+"="+scalar(v))
		}
	}
	return args
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64, int, int64, bool:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// hash identifies what a stage computes: its command, flags and inputs.
func (c *Config) hash(s *Stage) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00", s.Command, strings.Join(c.flagArgs(s), "\x00"), max(s.Shards, 1))
	for _, in := range s.inputs() {
		fmt.Fprintf(h, "%s\x00", in)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
