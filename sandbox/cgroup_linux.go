//go:build linux

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// cgroups makes a cgroup v2 per session, under a cgroup of the pool's own
// (dir) in a subtree the host delegated to this process, with the memory
// and pids controllers.
type cgroups struct {
	dir    string // the pool's cgroup: sessions' cgroups are made in it
	memory int64  // memory.max of a session
	pids   int    // pids.max of a session
	seq    atomic.Int64
}

// sessionCgroup is one session's cgroup.
type sessionCgroup struct{ dir string }

// supervisorLeaf names the leaf cgroup this process moves into when it has
// to empty its own cgroup to delegate controllers to its children.
const supervisorLeaf = "crucible-supervisor"

var poolSeq atomic.Int64

// setupCgroups finds where to make the sessions' cgroups (see
// Config.Cgroup) and makes the pool's. It returns nil and why when there is
// no delegated cgroup v2 subtree with the memory and pids controllers.
func setupCgroups(cfg *Config) (*cgroups, string) {
	if cfg.Cgroup == "off" {
		return nil, "cgroups turned off"
	}
	base := cfg.Cgroup
	if base == "" {
		var why string
		if base, why = delegatedCgroup("/proc/self/cgroup", "/proc/self/mountinfo"); base == "" {
			return nil, why
		}
	} else if err := enableControllers(base); err != nil {
		return nil, err.Error()
	}
	dir := filepath.Join(base, fmt.Sprintf("crucible-sandbox-%d-%d", os.Getpid(), poolSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Sprintf("cannot create a cgroup in %s: %v", base, err)
	}
	if err := enableControllers(dir); err != nil {
		os.Remove(dir)
		return nil, err.Error()
	}
	return &cgroups{dir: dir, memory: cfg.Limits.Memory, pids: cfg.Limits.Processes + 2}, ""
}

// delegatedCgroup returns a cgroup v2 directory whose children may get the
// memory and pids controllers: this process's own cgroup, after moving the
// process into a leaf of it when it must (a cgroup with processes cannot
// hand controllers to its children). It returns "" and why when there is
// none.
func delegatedCgroup(cgroupFile, mountinfo string) (string, string) {
	own, err := ownCgroup(cgroupFile, mountinfo)
	if err != nil {
		return "", err.Error()
	}
	if filepath.Base(own) == supervisorLeaf {
		// An earlier pool of this process moved it here already.
		if parent := filepath.Dir(own); hasControllers(filepath.Join(parent, "cgroup.subtree_control")) {
			return parent, ""
		}
	}
	if !hasControllers(filepath.Join(own, "cgroup.controllers")) {
		return "", fmt.Sprintf("cgroup %s does not have the memory and pids controllers (not delegated)", own)
	}
	if hasControllers(filepath.Join(own, "cgroup.subtree_control")) {
		return own, ""
	}
	procs, err := os.ReadFile(filepath.Join(own, "cgroup.procs"))
	if err != nil {
		return "", fmt.Sprintf("cgroup %s: %v", own, err)
	}
	if others := slices.DeleteFunc(strings.Fields(string(procs)), func(p string) bool { return p == strconv.Itoa(os.Getpid()) }); len(others) > 0 {
		return "", fmt.Sprintf("cgroup %s holds other processes than this one; run under a cgroup delegated to it alone (systemd-run --scope -p Delegate=yes ...)", own)
	}
	leaf := filepath.Join(own, supervisorLeaf)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Sprintf("cgroup %s is not writable (not delegated): %v", own, err)
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.Remove(leaf)
		return "", fmt.Sprintf("cannot move into %s: %v", leaf, err)
	}
	if err := enableControllers(own); err != nil {
		os.WriteFile(filepath.Join(own, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		os.Remove(leaf)
		return "", err.Error()
	}
	return own, ""
}

// ownCgroup returns the directory of this process's cgroup v2.
func ownCgroup(cgroupFile, mountinfo string) (string, error) {
	data, err := os.ReadFile(cgroupFile)
	if err != nil {
		return "", fmt.Errorf("no cgroup information: %v", err)
	}
	path := ""
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path = p
		}
	}
	if path == "" {
		return "", errors.New("no cgroup v2 hierarchy (cgroup v1 only)")
	}
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("no mount information: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 0:30 /root /mnt/point rw,... shared:1 - cgroup2 cgroup2 rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) < 5 {
			continue
		}
		root, point := unescapeMount(fields[3]), unescapeMount(fields[4])
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		return filepath.Join(point, rel), nil
	}
	return "", errors.New("cgroup v2 is not mounted")
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	if u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`); err == nil {
		return u
	}
	return s
}

// hasControllers reports whether a cgroup.controllers or
// cgroup.subtree_control file lists memory and pids.
func hasControllers(file string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	return slices.Contains(f, "memory") && slices.Contains(f, "pids")
}

// enableControllers gives dir's children the memory and pids controllers.
func enableControllers(dir string) error {
	if hasControllers(filepath.Join(dir, "cgroup.subtree_control")) {
		return nil
	}
	if !hasControllers(filepath.Join(dir, "cgroup.controllers")) {
		return fmt.Errorf("cgroup %s does not have the memory and pids controllers", dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +pids"), 0o644); err != nil {
		return fmt.Errorf("cannot delegate the memory and pids controllers of %s: %v", dir, err)
	}
	return nil
}

// session makes a cgroup with the session limits and moves process pid
// (the session's init, before it forks the worker) into it.
func (c *cgroups) session(pid int) (*sessionCgroup, error) {
	dir := filepath.Join(c.dir, "s"+strconv.FormatInt(c.seq.Add(1), 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: session cgroup: %w", err)
	}
	sc := &sessionCgroup{dir: dir}
	write := func(name, value string) error {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644); err != nil {
			return fmt.Errorf("sandbox: session cgroup: %w", err)
		}
		return nil
	}
	for _, kv := range [][2]string{{"memory.max", strconv.FormatInt(c.memory, 10)}, {"pids.max", strconv.Itoa(c.pids)},
		{"cgroup.procs", strconv.Itoa(pid)}} {
		if err := write(kv[0], kv[1]); err != nil {
			sc.remove()
			return nil, err
		}
	}
	// Best effort: no swapping past the limit; an OOM kill takes the whole
	// session, not one of its processes.
	write("memory.swap.max", "0")
	write("memory.oom.group", "1")
	return sc, nil
}

// oomKills returns how many processes of the session the kernel killed for
// passing its memory limit.
func (sc *sessionCgroup) oomKills() int {
	data, err := os.ReadFile(filepath.Join(sc.dir, "memory.events"))
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "oom_kill" || f[0] == "oom_group_kill") {
			v, _ := strconv.Atoi(f[1])
			n += v
		}
	}
	return n
}

// remove deletes the session's cgroup once its processes are gone.
func (sc *sessionCgroup) remove() {
	for i := 0; i < 50; i++ {
		err := unix.Rmdir(sc.dir)
		if err == nil || errors.Is(err, unix.ENOENT) || !errors.Is(err, unix.EBUSY) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// close removes the pool's cgroup (its sessions' are gone).
func (c *cgroups) close() { (&sessionCgroup{dir: c.dir}).remove() }

// describe says what limits the sessions' cgroups set.
func (c *cgroups) describe() string {
	return fmt.Sprintf("%s: memory.max %d MiB, pids.max %d per session", c.dir, c.memory>>20, c.pids)
}
