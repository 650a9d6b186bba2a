package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/crucible-ml/crucible/engine/tokenizer"
)

func init() { commands = append(commands, newTokenizeCmd) }

func newTokenizeCmd() *cobra.Command {
	var dir string
	var decode, addSpecial, skipSpecial bool
	cmd := &cobra.Command{
		Use:   "tokenize --tokenizer DIR",
		Short: "Turn text into token ids (or ids into text) with a model's tokenizer",
		Long: `Tokenize reads standard input line by line. Each line is text, or a JSON object whose "text"
field is the text (JSONL); it prints one JSON array of token ids per line. With --decode each
line is a JSON array of ids (or an object with "ids") and the output is one JSON object
{"text": ...} per line, which tokenize reads back.`,
		Example: `  echo 'What is 2+3?' | crucible tokenize --tokenizer ./Qwen2.5-0.5B-Instruct
  crucible tokenize --tokenizer DIR < problems.jsonl > ids.jsonl
  crucible tokenize --tokenizer DIR --decode < ids.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := tokenizer.Load(dir)
			if err != nil {
				return err
			}
			return runTokenize(cmd.InOrStdin(), cmd.OutOrStdout(), tok, decode, addSpecial, skipSpecial)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "tokenizer", "", "folder with tokenizer.json (a model folder)")
	fl.BoolVar(&decode, "decode", false, "read id arrays and print text")
	fl.BoolVar(&addSpecial, "add-special-tokens", false, "add the tokenizer's BOS/EOS template when encoding")
	fl.BoolVar(&skipSpecial, "skip-special-tokens", false, "drop special tokens when decoding")
	_ = cmd.MarkFlagRequired("tokenizer")
	return cmd
}

func runTokenize(in io.Reader, out io.Writer, tok *tokenizer.Tokenizer, decode, addSpecial, skipSpecial bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	w := bufio.NewWriter(out)
	defer w.Flush()
	var buf []byte
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		trimmed := bytes.TrimSpace(b)
		if decode {
			var ids []int
			if len(trimmed) > 0 && trimmed[0] == '{' {
				var row struct {
					IDs []int `json:"ids"`
				}
				if err := json.Unmarshal(trimmed, &row); err != nil {
					return fmt.Errorf("stdin line %d: %w", line, err)
				}
				ids = row.IDs
			} else if err := json.Unmarshal(trimmed, &ids); err != nil {
				return fmt.Errorf("stdin line %d: want a JSON array of token ids: %w", line, err)
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					return fmt.Errorf("stdin line %d: token id %d outside the vocabulary of %d", line, id, tok.VocabSize())
				}
			}
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(map[string]string{"text": tok.Decode(ids, skipSpecial)}); err != nil {
				return err
			}
			continue
		}
		text := string(b)
		if len(trimmed) > 0 && trimmed[0] == '{' {
			var row struct {
				Text *string `json:"text"`
			}
			if err := json.Unmarshal(trimmed, &row); err != nil {
				return fmt.Errorf("stdin line %d: %w", line, err)
			}
			if row.Text == nil {
				return fmt.Errorf("stdin line %d: JSON object without a \"text\" field", line)
			}
			text = *row.Text
		}
		buf = append(buf[:0], '[')
		for i, id := range tok.Encode(text, addSpecial) {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, int64(id), 10)
		}
		buf = append(buf, ']', '\n')
		w.Write(buf)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	return w.Flush()
}
