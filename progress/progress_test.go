package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestBarDraws(t *testing.T) {
	var out syncBuf
	b := NewWriter("work", 10, &out, time.Millisecond)
	for range 4 {
		b.Add(1)
	}
	b.AddErrors(1)
	time.Sleep(5 * time.Millisecond)
	b.Finish()
	b.Finish() // idempotent
	s := out.b.String()
	if !strings.Contains(s, "4/10") || !strings.Contains(s, " 40%") || !strings.Contains(s, "errors 1") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("bar output %q", s)
	}
}
