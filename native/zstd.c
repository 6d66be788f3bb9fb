// zstd.node: streaming zstd compression and decompression through libzstd (Debian's
// libzstd-dev), for layer blobs. Node 20's zlib has no zstd, and the npm zstd packages either
// bundle their own copy of the library, download prebuilt binaries, or buffer whole inputs;
// a small binding to the system libzstd keeps the one well-kept implementation and streams.
//
// Each call processes one chunk on the libuv thread pool (napi async work), so the event loop
// never waits on compression. A stream's calls are strictly sequential (the JS Transform waits
// for each callback), so a context is never used by two threads at once.
//
// Compression runs libzstd's multithreaded mode (ZSTD_c_nbWorkers >= 1) always: its frames
// depend on the level and the input, not on the number of workers, so blobs are the same on
// every machine (test/unit/oci/zstd.test.ts checks 1, 2 and 4 workers give identical bytes).
// nbWorkers = 0 (single-threaded mode) would produce different frames, so it is never used.
#include <node_api.h>
#include <zstd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error(env, NULL, "zstd binding: N-API call failed: " #call);  \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

// Decompression output per call is bounded, so a small hostile input cannot make one call
// allocate without limit: the caller calls again with the input that is left.
#define MAX_OUT (4u << 20)

typedef struct {
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
} stream_t;

typedef struct {
  napi_async_work work;
  napi_ref input_ref;   // keeps the input Buffer alive while a worker thread reads it
  napi_ref cb_ref;
  stream_t *s;
  const unsigned char *in;
  size_t in_size;
  bool end;             // compression: finish the frame
  // results
  unsigned char *out;
  size_t out_size;
  size_t consumed;
  bool frame_done;      // decompression: a frame ended exactly at `consumed`
  bool capped;          // decompression: stopped at MAX_OUT; call again (maybe with no input) for more
  const char *error;
} job_t;

static void finalize_stream(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  stream_t *s = data;
  if (s->cctx) ZSTD_freeCCtx(s->cctx);
  if (s->dctx) ZSTD_freeDCtx(s->dctx);
  free(s);
}

static bool grow(job_t *j, size_t *cap, size_t want) {
  if (want <= *cap) return true;
  size_t n = *cap ? *cap : 64 * 1024;
  while (n < want) n *= 2;
  unsigned char *p = realloc(j->out, n);
  if (!p) return false;
  j->out = p;
  *cap = n;
  return true;
}

static void run_compress(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  ZSTD_inBuffer in = {j->in, j->in_size, 0};
  size_t cap = 0;
  const size_t step = ZSTD_CStreamOutSize();
  for (;;) {
    if (!grow(j, &cap, j->out_size + step)) { j->error = "out of memory"; return; }
    ZSTD_outBuffer out = {j->out, cap, j->out_size};
    size_t r = ZSTD_compressStream2(j->s->cctx, &out, &in, j->end ? ZSTD_e_end : ZSTD_e_continue);
    j->out_size = out.pos;
    if (ZSTD_isError(r)) { j->error = ZSTD_getErrorName(r); return; }
    if (j->end ? r == 0 : in.pos == in.size) break;
  }
  j->consumed = in.pos;
}

static void run_decompress(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  ZSTD_inBuffer in = {j->in, j->in_size, 0};
  size_t cap = 0;
  const size_t step = ZSTD_DStreamOutSize();
  for (;;) {
    if (!grow(j, &cap, j->out_size + step)) { j->error = "out of memory"; return; }
    ZSTD_outBuffer out = {j->out, cap, j->out_size};
    size_t in_before = in.pos, out_before = out.pos;
    size_t r = ZSTD_decompressStream(j->s->dctx, &out, &in);
    j->out_size = out.pos;
    if (ZSTD_isError(r)) { j->error = ZSTD_getErrorName(r); return; }
    // Only a call that moved data says where the frame stands (an idle call after a frame's end
    // returns the size hint for the next one, not 0); the caller keeps the state of the last such call.
    if (in.pos > in_before || out.pos > out_before) j->frame_done = r == 0;
    // Output not filled with all input taken: the decoder has flushed all it could.
    if (in.pos == in.size && out.pos < out.size) break;
    if (j->out_size >= MAX_OUT) { j->capped = true; break; }
  }
  j->consumed = in.pos;
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value cb, undef, argv[5];
  napi_get_reference_value(env, j->cb_ref, &cb);
  napi_get_undefined(env, &undef);
  if (status != napi_ok || j->error) {
    napi_value msg;
    napi_create_string_utf8(env, j->error ? j->error : "zstd work failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &argv[0]);
    napi_get_undefined(env, &argv[1]);
    napi_get_undefined(env, &argv[2]);
    napi_get_undefined(env, &argv[3]);
    napi_get_undefined(env, &argv[4]);
  } else {
    void *copy;
    napi_get_null(env, &argv[0]);
    napi_create_buffer_copy(env, j->out_size, j->out_size ? (const void *)j->out : (const void *)"", &copy, &argv[1]);
    napi_create_double(env, (double)j->consumed, &argv[2]);
    napi_get_boolean(env, j->frame_done, &argv[3]);
    napi_get_boolean(env, j->capped, &argv[4]);
  }
  free(j->out);
  napi_delete_reference(env, j->input_ref);
  napi_delete_reference(env, j->cb_ref);
  napi_delete_async_work(env, j->work);
  free(j);
  napi_value ignored;
  napi_call_function(env, undef, cb, 5, argv, &ignored);
}

// createCompressor(level, workers) -> handle
static napi_value js_create_compressor(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle;
  int32_t level, workers;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &level));
  CHECK(napi_get_value_int32(env, argv[1], &workers));
  if (workers < 1) workers = 1;
  stream_t *s = calloc(1, sizeof *s);
  if (!s || !(s->cctx = ZSTD_createCCtx())) {
    free(s);
    napi_throw_error(env, NULL, "zstd: cannot create a compression context");
    return NULL;
  }
  size_t r = ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_nbWorkers, workers);
  if (ZSTD_isError(r)) {
    finalize_stream(env, s, NULL);
    napi_throw_error(env, NULL, ZSTD_getErrorName(r));
    return NULL;
  }
  CHECK(napi_create_external(env, s, finalize_stream, NULL, &handle));
  return handle;
}

static napi_value js_create_decompressor(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value handle;
  stream_t *s = calloc(1, sizeof *s);
  if (!s || !(s->dctx = ZSTD_createDCtx())) {
    free(s);
    napi_throw_error(env, NULL, "zstd: cannot create a decompression context");
    return NULL;
  }
  // Refuse frames whose window needs more than 2^27 bytes (128 MiB, libzstd's default limit):
  // a hostile layer must not make us allocate gigabytes.
  ZSTD_DCtx_setParameter(s->dctx, ZSTD_d_windowLogMax, 27);
  CHECK(napi_create_external(env, s, finalize_stream, NULL, &handle));
  return handle;
}

// process(handle, input, end, callback(err, output, consumed, frameDone, capped)); compresses when the
// handle is a compressor, else decompresses (`end` ignored).
static napi_value js_process(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], name;
  void *sp, *in;
  size_t in_size;
  bool end;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_external(env, argv[0], &sp));
  CHECK(napi_get_buffer_info(env, argv[1], &in, &in_size));
  CHECK(napi_get_value_bool(env, argv[2], &end));
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, NULL, "zstd: out of memory");
    return NULL;
  }
  j->s = sp;
  j->in = in;
  j->in_size = in_size;
  j->end = end;
  CHECK(napi_create_reference(env, argv[1], 1, &j->input_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &j->cb_ref));
  CHECK(napi_create_string_utf8(env, "zstd", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, j->s->cctx ? run_compress : run_decompress, complete, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value version;
  napi_property_descriptor props[] = {
    {"createCompressor", NULL, js_create_compressor, NULL, NULL, NULL, napi_enumerable, NULL},
    {"createDecompressor", NULL, js_create_decompressor, NULL, NULL, NULL, napi_enumerable, NULL},
    {"process", NULL, js_process, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(napi_create_string_utf8(env, ZSTD_versionString(), NAPI_AUTO_LENGTH, &version));
  CHECK(napi_set_named_property(env, exports, "version", version));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
