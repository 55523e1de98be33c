package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlLine matches the position yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// syntaxError words a YAML parse error as name:line: message, like every
// other load error; errors without a line get name: message.
func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", name, m[1], m[2])
	}
	return errors.New(name + ": " + strings.TrimPrefix(msg, "yaml: "))
}

// exprLine is the file line of the given line (1-based) of the expression
// held by n. A literal block (|) keeps its lines and starts on the line
// after its indicator; a folded block (>) starts there too but joins its
// lines, and a flow scalar may be folded, so for those the first line of
// the expression is the best position known.
func exprLine(n *yaml.Node, line int) int {
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		return n.Line + max(1, line)
	case n.Style&yaml.FoldedStyle != 0:
		return n.Line + 1
	}
	return n.Line
}
