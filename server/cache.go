package server

import (
	"container/list"
	"sync"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// imageCache is a least-recently-used cache of encoded images, keyed by
// the SHA-256 of the image bytes, bounded in bytes. A zero budget disables
// it. It is safe for concurrent use.
type imageCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	ll     *list.List // front = most recently used
	items  map[string]*list.Element
	hits   uint64
	misses uint64
}

type cacheEntry struct {
	key   string
	state *fusion.ImageState
	size  int64
}

func newImageCache(budget int64) *imageCache {
	return &imageCache{budget: budget, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns the state cached for key.
func (c *imageCache) get(key string) (*fusion.ImageState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		c.hits++
		return el.Value.(*cacheEntry).state, true
	}
	c.misses++
	return nil, false
}

// put stores st under key, evicting the least recently used entries to
// stay within budget. A state larger than the whole budget is not stored.
func (c *imageCache) put(key string, st *fusion.ImageState) {
	size := int64(st.Bytes()) + int64(len(key)) + 64
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.budget {
		return
	}
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, state: st, size: size})
	c.used += size
	for c.used > c.budget {
		last := c.ll.Back()
		e := last.Value.(*cacheEntry)
		c.ll.Remove(last)
		delete(c.items, e.key)
		c.used -= e.size
	}
}

// stats returns the entries, bytes used, hits and misses.
func (c *imageCache) stats() (entries int, used int64, hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.used, c.hits, c.misses
}
