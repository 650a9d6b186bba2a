package inspect

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crucible-ml/crucible/record"
)

//go:embed assets templates
var files embed.FS

// Options configure a Server.
type Options struct {
	// Roots are the run folders, output folders and rows files served;
	// nothing outside them (and the files beside a rows file that belong
	// to it) can be read.
	Roots []string
	// CacheDir keeps the row indexes (default: the user cache folder's
	// crucible/inspect; "-" for none).
	CacheDir string
	// APIKey, when set, is required of every request: as a Bearer token, or
	// once as ?key= (which sets a cookie).
	APIKey string
	// Version is shown in the page footer.
	Version string
}

// Server serves the viewer over its roots. It only reads.
type Server struct {
	o     Options
	roots []root
	pages map[string]*template.Template

	mu     sync.Mutex
	tables map[string]*Table
	evals  map[string]cachedEval
}

type root struct {
	path string // as given, absolute
	dir  string // the folder paths are relative to
	file bool   // a rows file: only it and the files named after it
}

// New checks the roots and prepares the templates.
func New(o Options) (*Server, error) {
	if len(o.Roots) == 0 {
		return nil, errors.New("inspect: no run folder or file given")
	}
	if o.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			o.CacheDir = filepath.Join(d, "crucible", "inspect")
		}
	}
	if o.CacheDir == "-" {
		o.CacheDir = ""
	}
	s := &Server{o: o, tables: map[string]*Table{}, evals: map[string]cachedEval{}}
	for _, p := range o.Roots {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("inspect: %w", err)
		}
		r := root{path: abs, dir: abs}
		if !fi.IsDir() {
			r.dir, r.file = filepath.Dir(abs), true
		}
		s.roots = append(s.roots, r)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	return s, nil
}

var funcs = template.FuncMap{
	"pct":  pct,
	"fnum": func(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) },
	"secs": func(x float64) string {
		if x == 0 {
			return ""
		}
		d := time.Duration(x * float64(time.Second))
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(100 * time.Millisecond).String()
	},
	"bytes": humanBytes,
	"md":    Markdown,
	"add":   func(a, b int) int { return a + b },
	"clip":  clip,
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	base, err := template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(filepath.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Handler returns the viewer's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /run", s.run)
	mux.HandleFunc("GET /rows", s.rows)
	mux.HandleFunc("GET /row", s.row)
	mux.HandleFunc("GET /group", s.group)
	mux.HandleFunc("GET /eval", s.eval)
	mux.HandleFunc("GET /curate", s.curate)
	mux.HandleFunc("GET /pairs", s.pairs)
	mux.HandleFunc("GET /log", s.log)
	mux.HandleFunc("GET /api/status", s.status)
	return s.guard(mux)
}

// guard adds the security headers and, with an API key, checks it.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "+
			"img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if s.o.APIKey != "" {
			if k := r.URL.Query().Get("key"); k != "" && s.keyOK(k) {
				http.SetCookie(w, &http.Cookie{Name: "crucible_inspect", Value: k, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
				q := r.URL.Query()
				q.Del("key")
				u := *r.URL
				u.RawQuery = q.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if c, err := r.Cookie("crucible_inspect"); err == nil && tok == "" {
				tok = c.Value
			}
			if !s.keyOK(tok) {
				http.Error(w, "401 unauthorized: open this address with ?key=THE_KEY once, or send Authorization: Bearer THE_KEY", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) keyOK(k string) bool {
	return k != "" && subtle.ConstantTimeCompare([]byte(k), []byte(s.o.APIKey)) == 1
}

// errRefused is a path outside the roots.
var errRefused = errors.New("path outside the served folders")

// resolve turns a reference "R:rel/path" (root R, a path relative to it)
// into a file path, refusing absolute paths, .. and symbolic links that
// lead out of the root.
func (s *Server) resolve(ref string) (string, error) {
	ri, rel, ok := strings.Cut(ref, ":")
	n, err := strconv.Atoi(ri)
	if !ok || err != nil || n < 0 || n >= len(s.roots) {
		return "", errRefused
	}
	rt := s.roots[n]
	if rel == "" {
		return rt.path, nil
	}
	if strings.ContainsRune(rel, 0) || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, `\`) || filepath.IsAbs(rel) {
		return "", errRefused
	}
	for _, part := range strings.FieldsFunc(rel, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return "", errRefused
		}
	}
	p := filepath.Join(rt.dir, filepath.FromSlash(rel))
	if !within(rt.dir, p) {
		return "", errRefused
	}
	if rt.file {
		stem := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(rt.path), ".jsonl"), ".parquet")
		if filepath.Dir(p) != rt.dir || !strings.HasPrefix(filepath.Base(p), stem) {
			return "", errRefused
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	if !within(rt.dir, real) {
		return "", errRefused
	}
	return real, nil
}

// ref is the reference of a path inside a root, or "".
func (s *Server) ref(p string) string {
	for i, rt := range s.roots {
		if p == rt.path {
			return strconv.Itoa(i) + ":"
		}
		if within(rt.dir, p) {
			rel, _ := filepath.Rel(rt.dir, p)
			if rt.file {
				stem := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(rt.path), ".jsonl"), ".parquet")
				if filepath.Dir(p) != rt.dir || !strings.HasPrefix(filepath.Base(p), stem) {
					continue
				}
			}
			return strconv.Itoa(i) + ":" + filepath.ToSlash(rel)
		}
	}
	return ""
}

// requestTable resolves a request's file reference (?f=) and returns it
// with its path and table.
func (s *Server) requestTable(r *http.Request) (ref, path string, t *Table, err error) {
	ref = r.URL.Query().Get("f")
	if path, err = s.resolve(ref); err != nil {
		return ref, "", nil, err
	}
	t, err = s.table(path)
	return ref, path, t, err
}

// table returns the (cached) table of a rows file. A Parquet file is
// copied once to JSON Lines in the cache folder and indexed there.
func (s *Server) table(path string) (*Table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tables[path]; ok {
		return t, nil
	}
	src := path
	if strings.HasSuffix(path, ".parquet") {
		var err error
		if src, err = s.parquetCopy(path); err != nil {
			return nil, err
		}
	}
	ix, err := OpenIndex(src, s.o.CacheDir)
	if err != nil {
		return nil, err
	}
	t := NewTable(ix)
	s.tables[path] = t
	return t, nil
}

func (s *Server) parquetCopy(path string) (string, error) {
	dir := s.o.CacheDir
	if dir == "" {
		dir = os.TempDir()
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	ix := &Index{path: path, cacheDir: dir}
	out := strings.TrimSuffix(ix.cachePath(), ".idx") + ".jsonl"
	if oi, err := os.Stat(out); err == nil && oi.ModTime().After(fi.ModTime()) {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	in, err := record.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return "", err
	}
	var buf []byte
	for in.Next() {
		buf = append(in.Row().AppendJSON(buf[:0]), '\n')
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return "", err
		}
	}
	if err := errors.Join(in.Err(), f.Close()); err != nil {
		return "", err
	}
	return out, os.Rename(out+".tmp", out)
}

// Loopback reports whether addr (host:port) listens on loopback only.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ListenAndServe serves until ctx ends. A non-loopback address needs an
// API key. ready, when not nil, receives the address listened on.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(addr string)) error {
	if !Loopback(addr) && s.o.APIKey == "" {
		return fmt.Errorf("inspect: %s is reachable from other machines: give an API key (--api-key-env) or bind 127.0.0.1", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(sctx)
			cancel()
		case <-done:
		}
	}()
	if ready != nil {
		ready(ln.Addr().String())
	}
	slog.Debug("inspect serving", "addr", ln.Addr().String(), "roots", len(s.roots))
	err = srv.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// render writes a page; an error becomes a 500 page.
func (s *Server) render(w http.ResponseWriter, name string, data any) {
	t := s.pages[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

// fail answers an error as a page with the right status.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, errRefused):
		code = http.StatusForbidden
	case errors.Is(err, os.ErrNotExist):
		code = http.StatusNotFound
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	}
	var b strings.Builder
	if err := s.pages["error"].ExecuteTemplate(&b, "layout", s.page(http.StatusText(code), err.Error())); err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, b.String())
}

var errBadRequest = errors.New("bad request")
