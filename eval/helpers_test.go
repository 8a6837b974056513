package eval

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Small assertion helpers (the module's tests use only the standard
// library).

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func equal(t *testing.T, want, got any, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("got %#v, want %#v%s", got, want, msg(args))
	}
}

func isTrue(t *testing.T, ok bool, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf("not true%s", msg(args))
	}
}

func hasSub(t *testing.T, s, sub string, args ...any) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q%s", s, sub, msg(args))
	}
}
