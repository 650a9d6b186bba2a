package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/crucible-ml/crucible"

// layers places every package of the module (paths relative to the module
// root); a package may import only packages of lower layers. Keep it in
// step with ARCHITECTURE.md.
var layers = map[string]int{
	// 0: leaves — rows, progress, the downloader, the backend interface,
	// the engine's file formats, tokenizer, chat templates and kernels.
	"record": 0, "progress": 0, "internal/download": 0, "backend": 0, "metric": 0,
	"engine/safetensors": 0, "engine/tokenizer": 0, "engine/chat": 0, "engine/internal/kernel": 0,
	// 1: building blocks — resumable stages, prompts, benchmark data, the engine.
	"stage": 1, "prompt": 1, "data": 1, "engine": 1, "engine/hub": 1,
	// 2: backends, grader, sandbox.
	"grade": 2, "sandbox": 2, "engine/gguf": 2, "backend/openai": 2, "backend/local": 2,
	// 3: stages over models.
	"solve": 3, "serve": 3, "curate": 3,
	// 4: recipes and orchestration.
	"eval": 4, "synth": 4, "pipeline": 4,
	// 4: the viewer and reports over run folders.
	"inspect": 4,
	// 5: measurements.
	"internal/bench": 5,
	// 6: the command line; 7: this test.
	"cmd/crucible": 6, "internal/archtest": 7,
}

// onlyFrom lists packages that only the given packages may import.
var onlyFrom = map[string][]string{
	"eval":           {"cmd/crucible"},
	"pipeline":       {"cmd/crucible"},
	"serve":          {"cmd/crucible"},
	"inspect":        {"cmd/crucible"},
	"internal/bench": {"cmd/crucible"},
	// The engine's kernels are the engine's business.
	"engine/internal/kernel": {"engine"},
}

func TestImportRules(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]map[string]bool{} // package -> module packages it imports
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" && !strings.HasPrefix(filepath.ToSlash(path), filepath.ToSlash(root)+"/cmd/") {
			return nil // a generator run with go run
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, module+"/"); ok {
				imports[pkg][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 10 {
		t.Fatalf("found only %d packages under %s", len(imports), root)
	}
	pkgs := make([]string, 0, len(imports))
	for p := range imports {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		l, ok := layers[pkg]
		if !ok {
			t.Errorf("package %s has no layer: add it to ARCHITECTURE.md and to layers here", pkg)
			continue
		}
		for im := range imports[pkg] {
			li, ok := layers[im]
			if !ok {
				continue // reported as a package above
			}
			if li >= l {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only lower layers", pkg, l, im, li)
			}
			if allowed, ok := onlyFrom[im]; ok && !contains(allowed, pkg) {
				t.Errorf("%s imports %s, which only %v may import", pkg, im, allowed)
			}
		}
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
