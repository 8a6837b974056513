package server

import (
	"fmt"
	"slices"
	"sync"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// modelEntry is one configured model.
type modelEntry struct {
	name string
	dir  string

	mu    sync.RWMutex
	state pb.ModelState
	err   error
	model fusion.Model
	info  fusion.Info
}

func (e *modelEntry) snapshot() (pb.ModelState, fusion.Model, fusion.Info, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state, e.model, e.info, e.err
}

func (e *modelEntry) setLoaded(m fusion.Model) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.model, e.info, e.state, e.err = m, m.Info(), pb.ModelState_MODEL_STATE_SERVING, nil
}

func (e *modelEntry) setFailed(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.state, e.err = pb.ModelState_MODEL_STATE_NOT_SERVING, err
}

// registry maps model names to entries, in configuration order.
type registry struct {
	mu     sync.RWMutex
	order  []*modelEntry
	byName map[string]*modelEntry
	def    string
}

func newRegistry() *registry { return &registry{byName: map[string]*modelEntry{}} }

// add registers a new entry in the LOADING state.
func (r *registry) add(name, dir string) (*modelEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[name]; dup {
		return nil, fmt.Errorf("model %q is already configured", name)
	}
	e := &modelEntry{name: name, dir: dir, state: pb.ModelState_MODEL_STATE_LOADING}
	r.order = append(r.order, e)
	r.byName[name] = e
	return e, nil
}

func (r *registry) get(name string) (*modelEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.byName[name]
	return e, ok
}

func (r *registry) all() []*modelEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.order)
}

// defaultName is the configured default, else the first model.
func (r *registry) defaultName() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.def != "" {
		return r.def
	}
	if len(r.order) > 0 {
		return r.order[0].name
	}
	return ""
}

func (r *registry) setDefault(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def = name
}

// taskOf maps fusion tasks to API tasks.
func taskOf(t fusion.Task) pb.Task {
	switch t {
	case fusion.TaskCaption:
		return pb.Task_TASK_CAPTION
	case fusion.TaskAnswer:
		return pb.Task_TASK_ANSWER
	case fusion.TaskMatch:
		return pb.Task_TASK_MATCH
	case fusion.TaskEmbed:
		return pb.Task_TASK_EMBED
	}
	return pb.Task_TASK_UNSPECIFIED
}

// tasksOf lists what m can do, from the interfaces it implements (the
// source of truth), in a fixed order.
func tasksOf(m fusion.Model) []pb.Task {
	var ts []pb.Task
	if _, ok := m.(fusion.Captioner); ok {
		ts = append(ts, pb.Task_TASK_CAPTION)
	}
	if _, ok := m.(fusion.Answerer); ok {
		ts = append(ts, pb.Task_TASK_ANSWER)
	}
	if _, ok := m.(fusion.Matcher); ok {
		ts = append(ts, pb.Task_TASK_MATCH)
	}
	if _, ok := m.(fusion.Embedder); ok {
		ts = append(ts, pb.Task_TASK_EMBED)
	}
	return ts
}
