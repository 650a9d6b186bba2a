package curate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/crucible-ml/crucible/backend"
	"github.com/crucible-ml/crucible/prompt"
	"github.com/crucible-ml/crucible/record"
)

// Export formats.
const (
	FormatRows       = "rows"       // the curated rows as they are
	FormatMessages   = "messages"   // {"messages": [user, assistant]} (Hugging Face chat SFT)
	FormatNeMo       = "nemo"       // {"input": chat-templated prompt, "output": solution + end of turn, "expected_answer"}
	FormatOMI2       = "omi2"       // {"problem", "generated_solution", "expected_answer", "problem_source"}
	FormatPreference = "preference" // {"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward"}
)

// Formats lists the export formats.
var Formats = []string{FormatRows, FormatMessages, FormatNeMo, FormatOMI2, FormatPreference}

// ChatTemplate renders chat messages into a model's prompt string; the
// engine's chat package provides one from a tokenizer folder.
type ChatTemplate interface {
	// Render renders messages; addGeneration adds the assistant header.
	Render(msgs []backend.Message, addGeneration bool) (string, error)
	// EndOfTurn is what ends an assistant turn (e.g. "<|im_end|>").
	EndOfTurn() string
}

// ExportOptions configure Export.
type ExportOptions struct {
	Format string
	// Prompt renders the user turn of SFT formats (default: the problem
	// text as it is).
	Prompt *prompt.Prompt
	// Template is required by the nemo format.
	Template ChatTemplate
}

// Check reports what would stop an export before any row is curated: an
// unknown format, or the nemo format without a chat template.
func (o ExportOptions) Check() error {
	if o.Format != "" && !slices.Contains(Formats, o.Format) {
		return fmt.Errorf("unknown export format %q (have %s)", o.Format, strings.Join(Formats, ", "))
	}
	if o.Format == FormatNeMo && o.Template == nil {
		return fmt.Errorf("the %s format needs a chat template (give --tokenizer a model folder with one)", FormatNeMo)
	}
	return nil
}

// ExportRow converts one curated row.
func (d *Dataset) ExportRow(r *record.Row, o ExportOptions) (*record.Row, error) {
	out := &record.Row{}
	user := func() ([]backend.Message, error) {
		if o.Prompt != nil {
			return o.Prompt.Messages(r)
		}
		return []backend.Message{{Role: "user", Content: d.Problem(r)}}, nil
	}
	switch o.Format {
	case FormatRows, "":
		return r, nil
	case FormatMessages:
		msgs, err := user()
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, backend.Message{Role: "assistant", Content: d.Solution(r)})
		out.Set("messages", msgs)
	case FormatNeMo:
		if o.Template == nil {
			return nil, fmt.Errorf("the nemo format needs a chat template (--tokenizer DIR)")
		}
		msgs, err := user()
		if err != nil {
			return nil, err
		}
		in, err := o.Template.Render(msgs, true)
		if err != nil {
			return nil, err
		}
		out.Set("input", in)
		out.Set("output", d.Solution(r)+o.Template.EndOfTurn())
		ans, _ := r.Text("expected_answer")
		out.Set("expected_answer", ans)
	case FormatOMI2:
		ans, _ := r.Text("expected_answer")
		src, ok := r.String("problem_source")
		if !ok {
			src, _ = r.String("dataset")
		}
		out.Set("problem", d.Problem(r))
		out.Set("generated_solution", d.Solution(r))
		out.Set("expected_answer", ans)
		out.Set("problem_source", src)
	case FormatPreference:
		for _, k := range []string{"prompt", "chosen", "rejected"} {
			raw := r.Raw(k)
			if raw == nil {
				return nil, fmt.Errorf("row %q has no %q field (preference rows come from `crucible synth pairs`)", r.ID(), k)
			}
			out.SetRaw(k, raw)
		}
		for _, k := range []string{"chosen_reward", "rejected_reward"} {
			if raw := r.Raw(k); raw != nil {
				out.SetRaw(k, raw)
			} else {
				out.SetRaw(k, json.RawMessage("null"))
			}
		}
	default:
		return nil, fmt.Errorf("unknown export format %q (have %s)", o.Format, strings.Join(Formats, ", "))
	}
	return out, nil
}

// Export writes the rows in the format to path — JSONL, or Parquet when the
// path ends in .parquet — atomically (a temporary file renamed at the end).
func (d *Dataset) Export(path string, o ExportOptions) (int, error) {
	out, err := createExport(path)
	if err != nil {
		return 0, err
	}
	defer out.abort()
	for _, r := range d.Rows {
		if err := out.write(d, r, o); err != nil {
			return 0, err
		}
	}
	return out.n, out.commit()
}

// exportFile writes exported rows to a temporary file beside path, renamed
// to path by commit.
type exportFile struct {
	path, tmp string
	f         *os.File
	sink      rowSink
	n         int
}

func createExport(path string) (*exportFile, error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	e := &exportFile{path: path, tmp: tmp, f: f}
	if strings.HasSuffix(path, ".parquet") {
		e.sink = &parquetSink{w: f}
	} else {
		e.sink = newJSONLSink(f)
	}
	return e, nil
}

// write converts one curated row and writes it.
func (e *exportFile) write(d *Dataset, r *record.Row, o ExportOptions) error {
	x, err := d.ExportRow(r, o)
	if err != nil {
		return fmt.Errorf("export row %q: %w", r.ID(), err)
	}
	if err := e.sink.write(x); err != nil {
		return fmt.Errorf("export %s: %w", e.path, err)
	}
	e.n++
	return nil
}

func (e *exportFile) commit() error {
	err := e.sink.close()
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	e.f = nil
	if err != nil {
		return fmt.Errorf("export %s: %w", e.path, err)
	}
	return os.Rename(e.tmp, e.path)
}

// abort removes the temporary file unless commit renamed it.
func (e *exportFile) abort() {
	if e.f != nil {
		e.f.Close()
	}
	os.Remove(e.tmp)
}

// rowSink writes rows one at a time.
type rowSink interface {
	write(r *record.Row) error
	close() error
}

type jsonlSink struct {
	bw  *bufio.Writer
	buf []byte
}

func newJSONLSink(w io.Writer) *jsonlSink { return &jsonlSink{bw: bufio.NewWriterSize(w, 1<<20)} }

func (s *jsonlSink) write(r *record.Row) error {
	s.buf = r.AppendJSON(s.buf[:0])
	s.buf = append(s.buf, '\n')
	_, err := s.bw.Write(s.buf)
	return err
}

func (s *jsonlSink) close() error { return s.bw.Flush() }

// WriteJSONL writes rows, one per line.
func WriteJSONL(w io.Writer, rows []*record.Row) error {
	s := newJSONLSink(w)
	for _, r := range rows {
		if err := s.write(r); err != nil {
			return err
		}
	}
	return s.close()
}

type parquetMsg struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

// parquetSink writes rows whose fields are the same in every row, in the
// first row's field order: strings, numbers and booleans become typed
// optional columns, `messages` a list of {role, content}, anything else a
// JSON string. Rows are buffered into row groups by the Parquet writer.
type parquetSink struct {
	w     io.Writer
	pw    *parquet.Writer
	st    reflect.Type
	keys  []string
	kinds []string
}

func (s *parquetSink) start(first *record.Row) {
	s.keys = first.Keys()
	s.kinds = make([]string, len(s.keys))
	fields := make([]reflect.StructField, len(s.keys))
	for i, k := range s.keys {
		raw := first.Raw(k)
		var typ reflect.Type
		tag := k + ",optional"
		switch {
		case k == "messages":
			s.kinds[i], typ, tag = "messages", reflect.TypeOf([]parquetMsg{}), k+",list"
		case len(raw) > 0 && raw[0] == '"':
			s.kinds[i], typ = "string", reflect.TypeOf((*string)(nil))
		case string(raw) == "true" || string(raw) == "false":
			s.kinds[i], typ = "bool", reflect.TypeOf((*bool)(nil))
		case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
			s.kinds[i], typ = "number", reflect.TypeOf((*float64)(nil))
		default:
			s.kinds[i], typ = "json", reflect.TypeOf((*string)(nil))
		}
		fields[i] = reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: typ, Tag: reflect.StructTag(fmt.Sprintf(`parquet:"%s"`, tag))}
	}
	s.st = reflect.StructOf(fields)
	s.pw = parquet.NewWriter(s.w, parquet.SchemaOf(reflect.New(s.st).Interface()))
}

func (s *parquetSink) write(r *record.Row) error {
	if s.pw == nil {
		s.start(r)
	}
	v := reflect.New(s.st).Elem()
	for i, k := range s.keys {
		raw := r.Raw(k)
		if raw == nil || string(raw) == "null" {
			continue
		}
		f := v.Field(i)
		switch s.kinds[i] {
		case "messages":
			var msgs []parquetMsg
			if err := json.Unmarshal(raw, &msgs); err != nil {
				return fmt.Errorf("row %q: messages: %w", r.ID(), err)
			}
			f.Set(reflect.ValueOf(msgs))
		case "string":
			str, ok := r.String(k)
			if !ok {
				return fmt.Errorf("row %q: field %q is not a string in every row", r.ID(), k)
			}
			f.Set(reflect.ValueOf(&str))
		case "bool":
			b, ok := r.Bool(k)
			if !ok {
				return fmt.Errorf("row %q: field %q is not a boolean in every row", r.ID(), k)
			}
			f.Set(reflect.ValueOf(&b))
		case "number":
			var x float64
			if err := json.Unmarshal(raw, &x); err != nil {
				return fmt.Errorf("row %q: field %q is not a number in every row", r.ID(), k)
			}
			f.Set(reflect.ValueOf(&x))
		default:
			str := string(raw)
			f.Set(reflect.ValueOf(&str))
		}
	}
	return s.pw.Write(v.Addr().Interface())
}

func (s *parquetSink) close() error {
	if s.pw == nil {
		return parquet.Write(s.w, []struct{}{})
	}
	return s.pw.Close()
}
