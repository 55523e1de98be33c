package webhook

import (
	"errors"
	"fmt"
	"text/template"
	"text/template/parse"
)

// Bounds of a go template's work. The sample alert at load and every
// delivery run the template, and text/template can stop neither a loop nor
// its output once started, so loops are bounded before it runs and the
// output while it runs.
const (
	// maxIterations bounds the iterations of nested ranges, counting a
	// range over an integer as that integer and a range over the alert's
	// data (its reasons, say) as dataEntries.
	maxIterations = 100000
	dataEntries   = 64
	// maxBody bounds the body a template writes.
	maxBody = 1 << 20
)

// checkLoops refuses a template whose nested ranges, followed through
// {{template}} calls, may run more than maxIterations times, or that
// ranges over something other than the alert's data or an integer
// constant.
func checkLoops(t *template.Template) error {
	trees := map[string]*parse.Tree{}
	for _, x := range t.Templates() {
		if x.Tree != nil {
			trees[x.Name()] = x.Tree
		}
	}
	var walk func(n parse.Node, factor int64, calling map[string]bool) error
	walkList := func(l *parse.ListNode, factor int64, calling map[string]bool) error {
		if l == nil {
			return nil
		}
		for _, n := range l.Nodes {
			if err := walk(n, factor, calling); err != nil {
				return err
			}
		}
		return nil
	}
	walk = func(n parse.Node, factor int64, calling map[string]bool) error {
		switch n := n.(type) {
		case *parse.ListNode:
			return walkList(n, factor, calling)
		case *parse.IfNode:
			return errors.Join(walkList(n.List, factor, calling), walkList(n.ElseList, factor, calling))
		case *parse.WithNode:
			return errors.Join(walkList(n.List, factor, calling), walkList(n.ElseList, factor, calling))
		case *parse.RangeNode:
			k, err := rangeCount(n.Pipe)
			if err != nil {
				return err
			}
			if k > maxIterations || factor*max(k, 1) > maxIterations {
				return fmt.Errorf("webhook template: %s at %s may loop more than %d times", n.String(), location(n), maxIterations)
			}
			return errors.Join(walkList(n.List, factor*max(k, 1), calling), walkList(n.ElseList, factor, calling))
		case *parse.TemplateNode:
			tree, ok := trees[n.Name]
			if !ok || calling[n.Name] {
				return nil // recursion ends at text/template's depth limit
			}
			inner := map[string]bool{n.Name: true}
			for name := range calling {
				inner[name] = true
			}
			return walkList(tree.Root, factor, inner)
		}
		return nil
	}
	return walk(t.Tree.Root, 1, map[string]bool{t.Name(): true})
}

// rangeCount returns how many iterations a range over pipe may run.
func rangeCount(pipe *parse.PipeNode) (int64, error) {
	if len(pipe.Cmds) == 1 && len(pipe.Cmds[0].Args) == 1 {
		switch a := pipe.Cmds[0].Args[0].(type) {
		case *parse.NumberNode:
			if a.IsInt {
				return max(a.Int64, 0), nil
			}
		case *parse.FieldNode, *parse.DotNode, *parse.ChainNode:
			return dataEntries, nil
		case *parse.VariableNode:
			if len(a.Ident) > 1 || a.Ident[0] == "$" { // a field of a variable, or the data itself
				return dataEntries, nil
			}
		}
	}
	return 0, fmt.Errorf("webhook template: {{range %s}} at %s: a range may go over the alert's data (.Alert.Reasons, say) or an integer constant up to %d", pipe, location(pipe), maxIterations)
}

func location(n parse.Node) string {
	return fmt.Sprintf("byte %d", n.Position())
}

// limitedBuffer is a bytes.Buffer that refuses to grow past maxBody, so a
// template that writes without end stops with an error.
type limitedBuffer struct{ buf []byte }

var errBodyTooLarge = fmt.Errorf("webhook template go: the output exceeds %d bytes", maxBody)

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > maxBody {
		return 0, errBodyTooLarge
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
