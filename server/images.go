package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
	"github.com/glimpse-vlm/glimpse/vision"
)

// decodeImage decodes encoded image bytes with vision.Decode under the
// server's limits (bytes and pixels, the latter checked from the header
// before any pixel is decoded), applying the EXIF orientation and
// converting to RGB as Hugging Face's load_image does.
func (s *Server) decodeImage(data []byte) (image.Image, error) {
	return vision.Decode(data, vision.Limits{MaxBytes: s.cfg.MaxImageBytes, MaxPixels: s.cfg.MaxImagePixels})
}

// imageErrorText describes an input error for a field violation; vision's
// errors already say what was wrong and what to do.
func imageErrorText(err error) string { return err.Error() }

// hashImage is the lowercase hex SHA-256 of data.
func hashImage(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// imageState returns the encoded state of img for model e, from the cache
// when possible. field names img in the request, for errors. It returns
// the image's SHA-256 and the time spent decoding and encoding (zero on a
// cache hit).
func (s *Server) imageState(ctx context.Context, e *modelEntry, m fusion.Model, img *pb.Image, field string) (*fusion.ImageState, string, time.Duration, error) {
	switch src := img.GetSource().(type) {
	case *pb.Image_Sha256:
		key := normalizeSHA(src.Sha256)
		if st, ok := s.cache.get(e.name + "/" + key); ok {
			return st, key, 0, nil
		}
		return nil, key, 0, notFound("image", key,
			"%s.sha256: model %s holds no image %s (evicted or never sent); send the image bytes again", field, e.name, key)
	case *pb.Image_Data:
		key := hashImage(src.Data)
		if st, ok := s.cache.get(e.name + "/" + key); ok {
			return st, key, 0, nil
		}
		start := time.Now()
		dec, err := s.decodeImage(src.Data)
		if err != nil {
			return nil, key, 0, badInput(field+".data", err)
		}
		st, err := m.EncodeImage(ctx, dec)
		if err != nil {
			return nil, key, 0, err
		}
		s.cache.put(e.name+"/"+key, st)
		return st, key, time.Since(start), nil
	}
	return nil, "", 0, invalidArgument(violation(field, "an image is required (data or sha256)"))
}
