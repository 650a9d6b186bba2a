package synth

import (
	"sort"

	"context"
	"github.com/crucible-ml/crucible/record"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/crucible-ml/crucible/backend"
)

var subjectRE = regexp.MustCompile(`within the subject "([^"]+)"`)

// topicsScript answers the macro-topic, subtopic and list-conversion
// prompts: a numbered list with an introduction and a remark, a prose
// answer that needs the model's conversion, a bulleted list of the wrong
// length with a repeated topic, a refusal, and a server error.
func topicsScript(r chatReq) reply {
	p := r.last()
	switch {
	case strings.Contains(p, "broad subject areas"):
		return reply{text: "Here are the topics you asked for:\n\n1. Science\n2. **Sports**\n3. Crime\n4. Errors\n\nI hope this helps!"}
	case strings.Contains(p, "Copy its items"):
		switch {
		case strings.Contains(p, "Physics and Chemistry"):
			return reply{text: "```json\n[\"Physics\", \"Chemistry\", \"Astrology\"]\n```"}
		default:
			return reply{text: "I'm sorry, there is no list in this text."}
		}
	case subjectRE.MatchString(p):
		switch subjectRE.FindStringSubmatch(p)[1] {
		case "Science":
			return reply{text: "Science splits into Physics and Chemistry, mostly."}
		case "Sports":
			return reply{text: "- Football\n- Tennis\n- physics"}
		case "Crime":
			return reply{text: "I'm sorry, but I can't help with that."}
		case "Errors":
			return reply{status: http.StatusInternalServerError}
		}
	}
	return reply{status: http.StatusBadRequest}
}

func TestTopics(t *testing.T) {
	s := newScripted(t, topicsScript)
	dir := t.TempDir()
	out := filepath.Join(dir, "topics.jsonl")
	run := func() (*Report, error) {
		return Topics(context.Background(), TopicsOptions{
			Common: Common{Backend: s.backend(), Concurrency: 4}, Output: out, MacroTopics: 3, Subtopics: 2,
		})
	}
	rep, err := run()
	if err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	got := map[string]string{}
	for k, r := range rows {
		got[k] = str(t, r, "topic") + "|" + str(t, r, "topic_level") + "|" + str(t, r, "macro_topic")
	}
	want := map[string]string{
		"macro-0#0":   "Science|macro|Science",
		"macro-1#0":   "Sports|macro|Sports",
		"macro-2#0":   "Crime|macro|Crime",
		"macro-3#0":   "Errors|macro|Errors",
		"macro-0-0#0": "Physics|sub|Science",
		"macro-0-1#0": "Chemistry|sub|Science",
		"macro-1-0#0": "Football|sub|Sports",
		"macro-1-1#0": "Tennis|sub|Sports",
	}
	if len(got) != len(want) {
		t.Errorf("got %d topics, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	// The macro list had 4 items for 3 asked; Sports had 3 for 2.
	if m := str(t, rows["macro-0#0"], "macro_topics_count_mismatch"); m != "asked for 3, got 4" {
		t.Errorf("macro count mismatch: %q", m)
	}
	if m := str(t, rows["macro-1-0#0"], "subtopics_count_mismatch"); m != "asked for 2, got 3" {
		t.Errorf("subtopic count mismatch: %q", m)
	}
	if rows["macro-0-0#0"].Has("subtopics_count_mismatch") {
		t.Errorf("Science's converted list has the asked length but says it does not")
	}
	work := readRows(t, filepath.Join(dir, "topics.jsonl.work", "03-subtopics.jsonl"))
	if f := str(t, work["macro-0#0"], "list_format"); f != ListConverted {
		t.Errorf("Science list format %q, want converted", f)
	}
	if n, _ := work["macro-0#0"].Int("list_dropped_items"); n != 1 {
		t.Errorf("the invented item Astrology should be dropped, got %d dropped", n)
	}
	if !work["macro-2#0"].Has("list_error") {
		t.Errorf("the refusal should leave a list_error: %s", work["macro-2#0"].AppendJSON(nil))
	}
	if !work["macro-3#0"].Has("error") {
		t.Errorf("the server error should be recorded on the row")
	}
	wantCounts := map[string]int{"duplicate_topics": 1, "subtopics_list_errors": 1, "subtopics_request_errors": 1,
		"subtopics_count_mismatches": 1, "macro_topics_count_mismatches": 1, "subtopics_converted_by_model": 2}
	for k, v := range wantCounts {
		if rep.Counts[k] != v {
			t.Errorf("count %s = %d, want %d (all: %v)", k, rep.Counts[k], v, rep.Counts)
		}
	}
	if rep.Errors != 1 {
		t.Errorf("request errors %d, want 1", rep.Errors)
	}
	checkResume(t, s, run)
}

func TestTopicsInterrupted(t *testing.T) {
	checkInterrupted(t, topicsScript, 3, []string{"topics.jsonl", "topics.jsonl.work/03-subtopics.jsonl"},
		func(ctx context.Context, be backend.Backend, dir string) error {
			_, err := Topics(ctx, TopicsOptions{
				Common: Common{Backend: be, Concurrency: 2}, Output: filepath.Join(dir, "topics.jsonl"),
				MacroTopics: 3, Subtopics: 2,
			})
			return err
		})
}

func TestTopicsRetryErrors(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	s := newScripted(t, func(r chatReq) reply {
		if fail.Load() && strings.Contains(r.last(), `"Errors"`) {
			return reply{status: http.StatusServiceUnavailable}
		}
		if strings.Contains(r.last(), `"Errors"`) {
			return reply{text: "1. Bugs\n2. Faults"}
		}
		return topicsScript(r)
	})
	out := filepath.Join(t.TempDir(), "topics.jsonl")
	run := func(retry bool) *Report {
		rep, err := Topics(context.Background(), TopicsOptions{
			Common: Common{Backend: s.backend(), RetryErrors: retry}, Output: out, MacroTopics: 3, Subtopics: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	run(false)
	fail.Store(false)
	rep := run(true)
	rows := readRows(t, out)
	if str(t, rows["macro-3-0#0"], "topic") != "Bugs" || str(t, rows["macro-3-1#0"], "topic") != "Faults" {
		t.Errorf("retried subtopics missing")
	}
	if rep.Written != 2 {
		t.Errorf("retry wrote %d topics, want 2", rep.Written)
	}
}

// A torn last line (what kill -9 leaves) in the output and in a step file
// is cut, and the rerun completes the same set of rows.
func TestTopicsTornLines(t *testing.T) {
	s := newScripted(t, topicsScript)
	dir := t.TempDir()
	out := filepath.Join(dir, "topics.jsonl")
	run := func() {
		if _, err := Topics(context.Background(), TopicsOptions{Common: Common{Backend: s.backend()}, Output: out,
			MacroTopics: 3, Subtopics: 2}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	want := strings.Join(sortedLines(t, out), "\n")
	for _, f := range []string{out, filepath.Join(dir, "topics.jsonl.work", "03-subtopics.jsonl")} {
		// Cut the last line in half, as a crash would.
		b, _ := os.ReadFile(f)
		body := strings.TrimRight(string(b), "\n")
		last := body[strings.LastIndex(body, "\n")+1:]
		cut := len(body) - len(last)/2
		if err := os.WriteFile(f, []byte(body[:cut]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if got := strings.Join(sortedLines(t, out), "\n"); strings.ReplaceAll(got, s.srv.URL, "") != strings.ReplaceAll(want, s.srv.URL, "") {
		t.Errorf("after repair:\n%s\nwant:\n%s", got, want)
	}
}

// Every built-in prompt can be replaced by a YAML file.
func TestTopicsPromptOverride(t *testing.T) {
	s := newScripted(t, func(r chatReq) reply {
		switch {
		case strings.Contains(r.last(), "Name 2 hobbies"):
			return reply{text: "1. Chess\n2. Hiking"}
		case strings.HasPrefix(r.last(), "Split "):
			m := strings.Fields(r.last())[1]
			return reply{text: "* " + m + " basics\n* " + m + " mastery"}
		}
		return reply{status: http.StatusBadRequest}
	})
	dir := t.TempDir()
	macro := filepath.Join(dir, "macro.yaml")
	os.WriteFile(macro, []byte("user: \"Name {n_macro_topics} hobbies.\"\n"), 0o644)
	sub := filepath.Join(dir, "sub.yaml")
	os.WriteFile(sub, []byte("user: \"Split {macro_topic} into {n_subtopics} parts.\"\n"), 0o644)
	mp, err := Prompt(macro)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := Prompt(sub)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "topics.jsonl")
	if _, err := Topics(context.Background(), TopicsOptions{Common: Common{Backend: s.backend()}, Output: out,
		MacroTopics: 2, Subtopics: 2, MacroPrompt: mp, SubPrompt: sp, NoMacroRows: true}); err != nil {
		t.Fatal(err)
	}
	rows := readRows(t, out)
	if len(rows) != 4 || str(t, rows["macro-0-1#0"], "topic") != "Chess mastery" || str(t, rows["macro-1-0#0"], "macro_topic") != "Hiking" {
		t.Errorf("rows %v", rows)
	}
	if _, err := Prompt("no/such"); err == nil {
		t.Errorf("an unknown prompt should be an error")
	}
}

// Shards share the macro list and split the subtopics: their union is the
// whole run (repeated topics aside: each shard removes its own).
func TestTopicsShards(t *testing.T) {
	s := newScripted(t, func(r chatReq) reply {
		if strings.Contains(r.last(), `subject "Sports"`) {
			return reply{text: "- Football\n- Tennis\n- Golf"}
		}
		return topicsScript(r)
	})
	dir := t.TempDir()
	run := func(out string, sh record.Shard) []string {
		if _, err := Topics(context.Background(), TopicsOptions{Common: Common{Backend: s.backend(), Shard: sh}, Output: filepath.Join(dir, out),
			MacroTopics: 3, Subtopics: 2}); err != nil {
			t.Fatal(err)
		}
		return sortedLines(t, filepath.Join(dir, out))
	}
	whole := run("all.jsonl", record.Shard{})
	a, b := run("s0.jsonl", record.Shard{Index: 0, Count: 2}), run("s1.jsonl", record.Shard{Index: 1, Count: 2})
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("a shard is empty: %d and %d rows", len(a), len(b))
	}
	union := append(append([]string(nil), a...), b...)
	sort.Strings(union)
	norm := func(xs []string) string { return strings.ReplaceAll(strings.Join(xs, "\n"), s.srv.URL, "") }
	if norm(union) != norm(whole) {
		t.Errorf("shards:\n%s\nwhole:\n%s", norm(union), norm(whole))
	}
}
