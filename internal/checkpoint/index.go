package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxIndexSize caps model.safetensors.index.json (real ones are well under
// a few megabytes).
const maxIndexSize = 64 << 20

// shardIndex is model.safetensors.index.json.
type shardIndex struct {
	WeightMap map[string]string `json:"weight_map"`
}

// openIndex opens the shards listed in the index file at path. Every shard
// file must sit in dir (plain file names), every tensor the index names
// must be in its shard, and no tensor may be in two shards.
func openIndex(dir, path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if st.Size() > maxIndexSize {
		return nil, fmt.Errorf("checkpoint: %s: %d bytes exceeds the %d-byte limit for an index file", path, st.Size(), maxIndexSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var idx shardIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %s", path, describeJSONError(raw, err))
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("checkpoint: %s: empty or missing \"weight_map\" (want {\"weight_map\": {tensor name: shard file}})", path)
	}
	want := map[string][]string{}
	var files []string
	for name, file := range idx.WeightMap {
		if file == "" || file != filepath.Base(file) || strings.ContainsAny(file, `/\`) || file == "." || file == ".." {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q maps to %q, which is not a file name in the checkpoint folder", path, name, file)
		}
		p := filepath.Join(dir, file)
		if _, ok := want[p]; !ok {
			files = append(files, p)
		}
		want[p] = append(want[p], name)
	}
	sort.Strings(files)
	for _, p := range files {
		sort.Strings(want[p])
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("checkpoint: %s lists shard %s (for tensor %q and %d others), which cannot be opened: %w",
				path, filepath.Base(p), want[p][0], len(want[p])-1, err)
		}
	}
	return openFiles(dir, files, want)
}
