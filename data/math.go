package data

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// mathPathRE matches a problem file of the MATH release, under any prefix
// (MATH/ in the authors' tar, a repository folder in a snapshot):
// <split>/<subject>/<n>.json. Names like ._1.json (macOS metadata) do not
// match.
var mathPathRE = regexp.MustCompile(`(?:^|/)(train|test)/(algebra|counting_and_probability|geometry|intermediate_algebra|number_theory|prealgebra|precalculus)/([0-9]+\.json)$`)

// mathProblem is one problem file, with its unique_id.
type mathProblem struct {
	Problem, Level, Type, Solution string
	ID                             string
}

// convertMATH converts the split ("test" or "train") of a MATH archive (a
// tar, gzipped or not) by the rule of ../shared/data/README.md, which made
// the pinned files:
//
//   - one JSON object per problem with, in this order, problem, level, type
//     and solution copied verbatim, answer (the content of the last \boxed{…},
//     else \fbox{…}, of solution, by brace matching, not normalised; "" when
//     none; see lastBoxed) and unique_id (the path from the MATH root, "test/algebra/1.json");
//   - lines sorted by unique_id as plain strings;
//   - written as Python's json.dumps(…, ensure_ascii=False) writes them.
func convertMATH(split string) func(archive string, w io.Writer) error {
	return func(archive string, w io.Writer) error {
		f, err := os.Open(archive)
		if err != nil {
			return err
		}
		defer f.Close()
		probs, err := readMATH(f, split)
		if err != nil {
			return err
		}
		return writeMATH(w, probs)
	}
}

// readMATH reads the split's problem files from a tar archive, sorted by
// unique_id.
func readMATH(r io.Reader, split string) ([]mathProblem, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer gz.Close()
		r = gz
	} else {
		r = br
	}
	tr := tar.NewReader(r)
	byID := map[string]mathProblem{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the archive: %w", err)
		}
		m := mathPathRE.FindStringSubmatch(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || m == nil || m[1] != split {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		var f struct {
			Problem  *string `json:"problem"`
			Level    *string `json:"level"`
			Type     *string `json:"type"`
			Solution *string `json:"solution"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		if f.Problem == nil || f.Level == nil || f.Type == nil || f.Solution == nil {
			return nil, fmt.Errorf("%s: not a MATH problem (wants problem, level, type and solution strings)", hdr.Name)
		}
		p := mathProblem{Problem: *f.Problem, Level: *f.Level, Type: *f.Type, Solution: *f.Solution,
			ID: m[1] + "/" + m[2] + "/" + m[3]}
		if old, ok := byID[p.ID]; ok && old != p {
			return nil, fmt.Errorf("%s: the archive holds two different %s", hdr.Name, p.ID)
		}
		byID[p.ID] = p
	}
	if len(byID) == 0 {
		return nil, fmt.Errorf("no %s/<subject>/<n>.json problem files in the archive: not the MATH release", split)
	}
	probs := make([]mathProblem, 0, len(byID))
	for _, p := range byID {
		probs = append(probs, p)
	}
	sort.Slice(probs, func(i, j int) bool { return probs[i].ID < probs[j].ID })
	return probs, nil
}

func writeMATH(w io.Writer, probs []mathProblem) error {
	var b bytes.Buffer
	for _, p := range probs {
		b.Reset()
		b.WriteString(`{"problem": `)
		pyString(&b, p.Problem)
		b.WriteString(`, "level": `)
		pyString(&b, p.Level)
		b.WriteString(`, "type": `)
		pyString(&b, p.Type)
		b.WriteString(`, "solution": `)
		pyString(&b, p.Solution)
		b.WriteString(`, "answer": `)
		pyString(&b, lastBoxed(p.Solution))
		b.WriteString(`, "unique_id": `)
		pyString(&b, p.ID)
		b.WriteString("}\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// lastBoxed returns the content of the last \boxed{…} in s, or of the last
// \fbox{…} when s has no \boxed, matching braces; "" when there is none.
// The brace-less form "\boxed 9$" (two train solutions end so) gives what
// follows "\boxed " up to the next $, as PRM800K's last_boxed_only_string
// reads it: that is what the pinned train file holds.
func lastBoxed(s string) string {
	i := strings.LastIndex(s, `\boxed`)
	if i >= 0 {
		if rest, ok := strings.CutPrefix(s[i:], `\boxed `); ok && !strings.HasPrefix(strings.TrimLeft(rest, " "), "{") {
			if j := strings.IndexByte(rest, '$'); j >= 0 {
				rest = rest[:j]
			}
			return rest
		}
	} else if i = strings.LastIndex(s, `\fbox`); i < 0 {
		return ""
	}
	open := strings.IndexByte(s[i:], '{')
	if open < 0 {
		return ""
	}
	open += i
	depth := 0
	for j := open; j < len(s); j++ {
		switch s[j] {
		case '{':
			depth++
		case '}':
			if depth--; depth == 0 {
				return s[open+1 : j]
			}
		}
	}
	return ""
}

// pyString writes s as a JSON string the way Python's json.dumps does with
// ensure_ascii=False: \" \\ \n \r \t \b \f, other control characters as
// \u00XX (lower-case hex), everything else as it is.
func pyString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteString(s[:n])
			}
		}
		s = s[n:]
	}
	b.WriteByte('"')
}
