// Package inspect is Crucible's viewer: a read-only web app over run
// folders (runs/NAME/ with manifest.json), output folders and rows files,
// and the same charts as one static HTML report.
//
// A rows file is read through an Index — the byte offset of every line,
// built by one sequential read and cached — so a page of a million-row
// file is a few ReadAt calls, and memory stays at 8 bytes a row. A Table
// adds queries: field filters, full-text search, an expr-lang expression
// (the language of curate's `where`), sorting, and the samples of one
// problem side by side. Charts are SVG written on the server from the
// data; the pages' only scripts are the embedded KaTeX (for math) and a
// poller for runs in progress. Every row field is HTML-escaped, Markdown
// is rendered with raw HTML shown as text, and paths outside the roots
// are refused.
//
//	srv, err := inspect.New(inspect.Options{Roots: []string{"runs/omi2"}})
//	err = srv.ListenAndServe(ctx, "127.0.0.1:8080", nil)
//
//	f, _ := os.Create("report.html")
//	err = inspect.WriteReport(ctx, f, "runs/omi2", inspect.ReportOptions{})
package inspect
