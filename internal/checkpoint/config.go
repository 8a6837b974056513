package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// MaxJSONSize caps a JSON file read by ReadJSON. tokenizer.json files of
// large vocabularies are a few tens of megabytes.
const MaxJSONSize = 256 << 20

// ReadJSON decodes the JSON file name in dir into v. Unknown keys are
// ignored. A missing file gives an error wrapping fs.ErrNotExist (test it
// with errors.Is); a malformed one an error naming the file and the line
// and column of the problem, or the key whose value has the wrong type.
func ReadJSON(dir, name string, v any) error {
	path := filepath.Join(dir, name)
	raw, err := readCapped(path)
	if err != nil {
		return err
	}
	return decodeJSON(path, raw, v)
}

// readCapped reads a regular file of at most MaxJSONSize bytes.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: %s is not a regular file", path)
	}
	if st.Size() > MaxJSONSize {
		return nil, fmt.Errorf("checkpoint: %s: %d bytes exceeds the %d-byte limit for a JSON file", path, st.Size(), MaxJSONSize)
	}
	raw, err := io.ReadAll(io.LimitReader(f, MaxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	return raw, nil
}

func decodeJSON(path string, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("checkpoint: %s: %s", path, describeJSONError(raw, err))
	}
	return nil
}

// describeJSONError turns a decoding error into text with a line and
// column (syntax errors) or the offending key (type errors).
func describeJSONError(raw []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(raw, se.Offset)
		return fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("key %q: a JSON %s cannot be a %v", te.Field, te.Value, te.Type)
		}
		return fmt.Sprintf("a JSON %s cannot be a %v", te.Value, te.Type)
	}
	return err.Error()
}

func lineCol(raw []byte, off int64) (line, col int) {
	if off > int64(len(raw)) {
		off = int64(len(raw))
	}
	if off < 0 {
		off = 0
	}
	before := raw[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}
