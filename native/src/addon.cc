// cao2_torch: a thin, generic N-API binding over libtorch.
//
// Every ATen operator is reached through the c10 dispatcher by its schema name ("aten::conv2d"), so this file holds
// no per-op code and no model code: JS arguments are converted to IValues following the operator's schema (defaults
// filled in), the boxed kernel runs (autograd included), and results come back as tensors, numbers or arrays.
// The rest is what the dispatcher does not cover: tensor <-> buffer copies, autograd entry points, grad mode,
// random generators, threads, devices and memory accounting.

#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <cstdlib>
#include <unordered_map>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Tensor and Generator handles
// ---------------------------------------------------------------------------------------------------------------

// A tensor handle is a JS External owning one TensorHandle. Built with NAPI_EXPERIMENTAL, Node runs an External's
// finalizer inside the garbage collection that frees it (Node 20 otherwise defers every finalizer to setImmediate,
// which a synchronous loop never reaches: the handles' native objects then pile up and fragment the malloc heap).
class TensorHandle {
 public:
  static Napi::Value Wrap(Napi::Env env, at::Tensor t) {
    auto* h = new TensorHandle(std::move(t));
    h->account(env);
    napi_value v;
    napi_status st = napi_create_external(env, h, &TensorHandle::Finalize, nullptr, &v);
    if (st != napi_ok) {
      delete h;
      throw Napi::Error::New(env, "cannot create a tensor handle");
    }
    return Napi::Value(env, v);
  }

  // nullptr unless v is a tensor handle (the only Externals this addon makes).
  static TensorHandle* From(const Napi::Value& v) {
    napi_valuetype type;
    if (napi_typeof(v.Env(), v, &type) != napi_ok || type != napi_external) return nullptr;
    void* data = nullptr;
    napi_get_value_external(v.Env(), v, &data);
    return static_cast<TensorHandle*>(data);
  }

  const at::Tensor& tensor() const {
    if (disposed_) throw std::runtime_error("this tensor was disposed and can no longer be used");
    return tensor_;
  }

  void dispose(node_api_basic_env env) {
    release(env);
    disposed_ = true;
  }

  bool disposed() const { return disposed_; }

 private:
  explicit TensorHandle(at::Tensor t) : tensor_(std::move(t)) {}

  static void Finalize(node_api_basic_env env, void* data, void*) {
    auto* h = static_cast<TensorHandle*>(data);
    h->release(env);
    delete h;
  }

  // Views share their base's storage: only tensors that own their storage report bytes, so V8 sees each buffer once.
  void account(Napi::Env env) {
    if (!tensor_.defined() || tensor_.is_view() || !tensor_.has_storage() || !tensor_.device().is_cpu()) return;
    reported_ = static_cast<int64_t>(tensor_.storage().nbytes());
    int64_t total;
    if (reported_ > 0) napi_adjust_external_memory(env, reported_, &total);
  }

  void release(node_api_basic_env env) {
    int64_t total;
    if (reported_ > 0) napi_adjust_external_memory(env, -reported_, &total);
    reported_ = 0;
    tensor_ = at::Tensor();
  }

  at::Tensor tensor_;
  int64_t reported_ = 0;
  bool disposed_ = false;
};

class GeneratorHandle : public Napi::ObjectWrap<GeneratorHandle> {
 public:
  static Napi::FunctionReference ctor;
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "GeneratorHandle", {});
    ctor = Napi::Persistent(f);
    ctor.SuppressDestruct();
    exports.Set("GeneratorHandle", f);
  }
  explicit GeneratorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorHandle>(info) {}
  static Napi::Object Wrap(at::Generator g) {
    Napi::Object obj = ctor.New({});
    Unwrap(obj)->gen = std::move(g);
    return obj;
  }
  at::Generator gen;
};
Napi::FunctionReference GeneratorHandle::ctor;

bool IsInstance(const Napi::Value& v, const Napi::FunctionReference& ctor) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(ctor.Value());
}

const at::Tensor& ToTensor(const Napi::Value& v, const char* what) {
  TensorHandle* h = TensorHandle::From(v);
  if (!h) throw std::invalid_argument(std::string(what) + ": expected a tensor");
  return h->tensor();
}

Napi::Value WrapOrNull(Napi::Env env, const at::Tensor& t) {
  if (!t.defined()) return env.Null();
  return TensorHandle::Wrap(env, t);
}

// ---------------------------------------------------------------------------------------------------------------
// JS value -> IValue, driven by the schema's argument type
// ---------------------------------------------------------------------------------------------------------------

int64_t ToInt(const Napi::Value& v, const std::string& name) {
  if (v.IsBigInt()) {
    bool lossless = true;
    int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw std::invalid_argument("argument '" + name + "': integer out of int64 range");
    return r;
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  if (!v.IsNumber()) throw std::invalid_argument("argument '" + name + "': expected an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) {
    throw std::invalid_argument("argument '" + name + "': expected an integer, got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

double ToDouble(const Napi::Value& v, const std::string& name) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return static_cast<double>(v.As<Napi::BigInt>().Int64Value(&lossless));
  }
  if (!v.IsNumber()) throw std::invalid_argument("argument '" + name + "': expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

// JS has one number type: integral values become integer Scalars (as Python's `2`), others doubles (as `2.5`).
at::Scalar ToScalar(const Napi::Value& v, const std::string& name) {
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return at::Scalar(ToInt(v, name));
  if (!v.IsNumber()) throw std::invalid_argument("argument '" + name + "': expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) <= 9007199254740992.0) {
    return at::Scalar(static_cast<int64_t>(d));
  }
  return at::Scalar(d);
}

c10::IValue ToIValue(const Napi::Value& v, const c10::TypePtr& type, const c10::Argument& arg) {
  const std::string& name = arg.name();
  switch (type->kind()) {
    case c10::TypeKind::OptionalType:
      if (v.IsUndefined() || v.IsNull()) return c10::IValue();
      return ToIValue(v, type->castRaw<c10::OptionalType>()->getElementType(), arg);
    case c10::TypeKind::TensorType:
      return ToTensor(v, ("argument '" + name + "'").c_str());
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      return ToInt(v, name);
    case c10::TypeKind::FloatType:
    case c10::TypeKind::SymFloatType:
      return ToDouble(v, name);
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) throw std::invalid_argument("argument '" + name + "': expected a boolean");
      return v.As<Napi::Boolean>().Value();
    case c10::TypeKind::NumberType:
      return ToScalar(v, name);
    case c10::TypeKind::StringType:
      if (!v.IsString()) throw std::invalid_argument("argument '" + name + "': expected a string");
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) throw std::invalid_argument("argument '" + name + "': expected a device string");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::GeneratorType:
      if (!IsInstance(v, GeneratorHandle::ctor)) {
        throw std::invalid_argument("argument '" + name + "': expected a generator");
      }
      return GeneratorHandle::Unwrap(v.As<Napi::Object>())->gen;
    case c10::TypeKind::ListType: {
      const c10::TypePtr& elem = type->castRaw<c10::ListType>()->getElementType();
      const auto ek = elem->kind();
      // Python's `stride=2` for an int[2] argument: a single number is broadcast to the list's fixed size.
      if (v.IsNumber() && (ek == c10::TypeKind::IntType || ek == c10::TypeKind::SymIntType)) {
        int64_t n = arg.N().value_or(1);
        return std::vector<int64_t>(static_cast<size_t>(n), ToInt(v, name));
      }
      if (!v.IsArray()) throw std::invalid_argument("argument '" + name + "': expected an array");
      Napi::Array a = v.As<Napi::Array>();
      const uint32_t n = a.Length();
      switch (ek) {
        case c10::TypeKind::IntType:
        case c10::TypeKind::SymIntType: {
          std::vector<int64_t> out(n);
          for (uint32_t i = 0; i < n; i++) out[i] = ToInt(a.Get(i), name);
          return out;
        }
        case c10::TypeKind::FloatType: {
          std::vector<double> out(n);
          for (uint32_t i = 0; i < n; i++) out[i] = ToDouble(a.Get(i), name);
          return out;
        }
        case c10::TypeKind::BoolType: {
          c10::List<bool> out;
          for (uint32_t i = 0; i < n; i++) out.push_back(a.Get(i).ToBoolean().Value());
          return out;
        }
        case c10::TypeKind::TensorType: {
          std::vector<at::Tensor> out;
          out.reserve(n);
          for (uint32_t i = 0; i < n; i++) out.push_back(ToTensor(a.Get(i), ("argument '" + name + "'").c_str()));
          return out;
        }
        case c10::TypeKind::OptionalType: {
          if (elem->castRaw<c10::OptionalType>()->getElementType()->kind() == c10::TypeKind::TensorType) {
            c10::List<c10::optional<at::Tensor>> out;
            for (uint32_t i = 0; i < n; i++) {
              Napi::Value e = a.Get(i);
              if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
              else out.push_back(ToTensor(e, ("argument '" + name + "'").c_str()));
            }
            return out;
          }
          break;
        }
        default:
          break;
      }
      throw std::invalid_argument("argument '" + name + "': unsupported list type " + type->str());
    }
    default:
      throw std::invalid_argument("argument '" + name + "': unsupported type " + type->str());
  }
}

Napi::Value FromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return WrapOrNull(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    Napi::Array a = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) a.Set(static_cast<uint32_t>(i), FromIValue(env, elems[i]));
    return a;
  }
  if (v.isList()) {
    auto list = v.toListRef();
    Napi::Array a = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) a.Set(static_cast<uint32_t>(i), FromIValue(env, list[i]));
    return a;
  }
  if (v.isScalar()) return Napi::Number::New(env, v.toScalar().toDouble());
  throw std::runtime_error("cannot convert a result of type " + v.tagKind() + " to JavaScript");
}

// ---------------------------------------------------------------------------------------------------------------
// CPU buffers of 64 KiB and more come from a cache of mmap'd blocks, one free list per size class (1/8 steps between
// powers of two). glibc's malloc returns such buffers to the kernel on free (mmap) or keeps them in a heap shared
// with millions of small objects that fragment it; either way a training step pays page faults for every large
// activation, and RSS can grow. Reused blocks are already mapped. CAO2_CPU_CACHE_MB caps the idle cache (default
// 2048; 0 disables the cache).
// ---------------------------------------------------------------------------------------------------------------

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t cap) : cap_(cap) {}

  c10::DataPtr allocate(size_t n) const override {
    // Small buffers: malloc, behind the same header (size 0), so that one deleter serves every pointer.
    if (n < kMin) {
      void* mem = nullptr;
      if (posix_memalign(&mem, kHeader, n + kHeader) != 0) throw std::bad_alloc();
      void* data = static_cast<char*>(mem) + kHeader;
      new (mem) Block{0, const_cast<CachingCpuAllocator*>(this)};
      return {data, data, &CachingCpuAllocator::Release, c10::Device(c10::DeviceType::CPU)};
    }
    const size_t cls = SizeClass(n);
    Block* b = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        b = it->second.back();
        it->second.pop_back();
        idle_ -= cls;
      }
    }
    if (!b) {
      void* mem = mmap(nullptr, cls + kHeader, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) throw std::bad_alloc();
      b = new (mem) Block{cls, const_cast<CachingCpuAllocator*>(this)};
    }
    void* data = reinterpret_cast<char*>(b) + kHeader;
    return {data, data, &CachingCpuAllocator::Release, c10::Device(c10::DeviceType::CPU)};
  }

  // mkldnn allocates through raw_allocate, which needs the context to be the data pointer.
  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::Release; }

 private:
  struct Block {
    size_t size;
    CachingCpuAllocator* owner;
  };
  static constexpr size_t kMin = 64 << 10;
  static constexpr size_t kHeader = 64;  // keeps the data 64-byte aligned, as c10's allocator does

  static size_t SizeClass(size_t n) {
    size_t pow = size_t(1) << (63 - __builtin_clzll(n));
    size_t step = std::max<size_t>(pow / 8, 4096);
    return (n + step - 1) / step * step;
  }

  static void Release(void* data) {
    auto* b = reinterpret_cast<Block*>(static_cast<char*>(data) - kHeader);
    if (b->size == 0) return std::free(b);
    CachingCpuAllocator* self = b->owner;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->idle_ + b->size <= self->cap_) {
        self->free_[b->size].push_back(b);
        self->idle_ += b->size;
        return;
      }
    }
    munmap(b, b->size + kHeader);
  }

  size_t cap_;
  mutable std::mutex mu_;
  mutable std::unordered_map<size_t, std::vector<Block*>> free_;
  mutable size_t idle_ = 0;
};

void InstallCpuAllocator() {
  const char* env = std::getenv("CAO2_CPU_CACHE_MB");
  const size_t mb = env ? std::strtoull(env, nullptr, 10) : 2048;
  if (mb == 0) return;
  static CachingCpuAllocator alloc(mb << 20);
  c10::SetCPUAllocator(&alloc, /*priority=*/10);
}

// ---------------------------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------------------------

std::vector<c10::OperatorHandle> g_ops;

// op(name, overload) -> [id, [[argName, type, hasDefault, kwargOnly], ...], numReturns]
Napi::Value Op(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info[1].As<Napi::String>().Utf8Value();
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) throw std::invalid_argument("no operator " + name + (overload.empty() ? "" : "." + overload) + " in this libtorch");
  g_ops.push_back(*handle);
  const auto& schema = handle->schema();
  Napi::Array args = Napi::Array::New(env, schema.arguments().size());
  for (size_t i = 0; i < schema.arguments().size(); i++) {
    const auto& a = schema.arguments()[i];
    Napi::Array d = Napi::Array::New(env, 4);
    d.Set(0u, a.name());
    d.Set(1u, a.type()->str());
    d.Set(2u, a.default_value().has_value());
    d.Set(3u, a.kwarg_only());
    args.Set(static_cast<uint32_t>(i), d);
  }
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, static_cast<double>(g_ops.size() - 1));
  out.Set(1u, args);
  out.Set(2u, static_cast<double>(schema.returns().size()));
  return out;
}

// call(id, args[], discardResult) -> result | [results] | undefined. `undefined` args take the schema default.
Napi::Value Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= g_ops.size()) throw std::invalid_argument("bad operator id");
  const c10::OperatorHandle& op = g_ops[id];
  const auto& schema = op.schema();
  Napi::Array jsArgs = info[1].As<Napi::Array>();
  const uint32_t given = jsArgs.Length();
  const auto& formal = schema.arguments();
  if (given > formal.size()) {
    throw std::invalid_argument(schema.name() + ": expected at most " + std::to_string(formal.size()) +
                                " arguments, got " + std::to_string(given));
  }
  torch::jit::Stack stack;
  stack.reserve(formal.size());
  for (size_t i = 0; i < formal.size(); i++) {
    Napi::Value v = i < given ? jsArgs.Get(static_cast<uint32_t>(i)) : env.Undefined();
    if (v.IsUndefined()) {
      if (formal[i].default_value().has_value()) {
        stack.push_back(*formal[i].default_value());
        continue;
      }
      if (formal[i].type()->kind() == c10::TypeKind::OptionalType) {
        stack.emplace_back();
        continue;
      }
      throw std::invalid_argument(schema.name() + ": missing argument '" + formal[i].name() + "'");
    }
    stack.push_back(ToIValue(v, formal[i].type(), formal[i]));
  }
  op.callBoxed(&stack);
  if (info.Length() > 2 && info[2].ToBoolean().Value()) return env.Undefined();
  if (stack.empty()) return env.Undefined();
  if (stack.size() == 1) return FromIValue(env, stack[0]);
  Napi::Array out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) out.Set(static_cast<uint32_t>(i), FromIValue(env, stack[i]));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tensor data and metadata
// ---------------------------------------------------------------------------------------------------------------

std::vector<int64_t> ToShape(const Napi::Value& v) {
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    shape[i] = ToInt(a.Get(i), "shape");
    if (shape[i] < 0) throw std::invalid_argument("shape: negative dimension " + std::to_string(shape[i]));
  }
  return shape;
}

// fromBuffer(bytes: ArrayBufferView | ArrayBuffer, shape, dtype) -> copy into a new CPU tensor.
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (info[0].IsTypedArray()) {
    auto ta = info[0].As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (info[0].IsDataView()) {
    auto dv = info[0].As<Napi::DataView>();
    data = static_cast<const uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    len = dv.ByteLength();
  } else if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw std::invalid_argument("fromBuffer: expected a typed array or ArrayBuffer");
  }
  auto shape = ToShape(info[1]);
  auto dtype = static_cast<at::ScalarType>(ToInt(info[2], "dtype"));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (t.nbytes() != len) {
    throw std::invalid_argument("fromBuffer: " + std::to_string(len) + " bytes given, shape " + c10::str(t.sizes()) +
                                " of " + std::string(c10::toString(dtype)) + " needs " + std::to_string(t.nbytes()));
  }
  if (len) std::memcpy(t.data_ptr(), data, len);
  return TensorHandle::Wrap(env, t);
}

// toBuffer(t) -> ArrayBuffer holding the tensor's values, contiguous, on the CPU.
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor t = ToTensor(info[0], "toBuffer");
  {
    at::NoGradGuard ng;
    t = t.to(at::kCPU).contiguous();
  }
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, t.nbytes());
  if (t.nbytes()) std::memcpy(ab.Data(), t.data_ptr(), t.nbytes());
  return ab;
}

// meta(t) -> [shape[], dtype, device, requiresGrad, isLeaf]
Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = ToTensor(info[0], "meta");
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), static_cast<double>(t.size(i)));
  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(0u, shape);
  out.Set(1u, static_cast<double>(static_cast<int>(t.scalar_type())));
  out.Set(2u, t.device().str());
  out.Set(3u, t.requires_grad());
  out.Set(4u, t.is_leaf());
  return out;
}

Napi::Value Strides(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = ToTensor(info[0], "strides");
  Napi::Array out = Napi::Array::New(env, t.dim() + 1);
  for (int64_t i = 0; i < t.dim(); i++) out.Set(static_cast<uint32_t>(i), static_cast<double>(t.stride(i)));
  out.Set(static_cast<uint32_t>(t.dim()), static_cast<double>(t.storage_offset()));
  return out;
}

Napi::Value Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = ToTensor(info[0], "item");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
  return Napi::Number::New(env, s.toDouble());
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (TensorHandle* h = TensorHandle::From(info[0])) h->dispose(info.Env());
  return info.Env().Undefined();
}

Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  TensorHandle* h = TensorHandle::From(info[0]);
  if (!h) throw std::invalid_argument("isDisposed: expected a tensor");
  return Napi::Boolean::New(info.Env(), h->disposed());
}

// sameStorage(a, b): whether two tensors view one buffer (used to tell in-place results from new ones).
Napi::Value SameStorage(const Napi::CallbackInfo& info) {
  const at::Tensor& a = ToTensor(info[0], "sameStorage");
  const at::Tensor& b = ToTensor(info[1], "sameStorage");
  return Napi::Boolean::New(info.Env(), a.is_same(b));
}

// ---------------------------------------------------------------------------------------------------------------
// Autograd
// ---------------------------------------------------------------------------------------------------------------

std::vector<at::Tensor> ToTensorList(const Napi::Value& v, const char* what, bool allowNull) {
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (allowNull && (e.IsNull() || e.IsUndefined())) out.emplace_back();
    else out.push_back(ToTensor(e, what));
  }
  return out;
}

// backward(tensors[], grads[] (null = ones for scalars), retainGraph, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  auto tensors = ToTensorList(info[0], "backward", false);
  auto grads = ToTensorList(info[1], "backward gradient", true);
  bool retain = info[2].ToBoolean().Value();
  bool create = info[3].ToBoolean().Value();
  torch::autograd::backward(tensors, grads, retain, create);
  return info.Env().Undefined();
}

// grad(outputs[], inputs[], gradOutputs[], retainGraph, createGraph, allowUnused) -> (tensor|null)[]
Napi::Value Grad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto outputs = ToTensorList(info[0], "grad outputs", false);
  auto inputs = ToTensorList(info[1], "grad inputs", false);
  auto gradOutputs = ToTensorList(info[2], "grad gradOutputs", true);
  bool retain = info[3].ToBoolean().Value();
  bool create = info[4].ToBoolean().Value();
  bool allowUnused = info[5].ToBoolean().Value();
  auto res = torch::autograd::grad(outputs, inputs, gradOutputs, retain, create, allowUnused);
  Napi::Array out = Napi::Array::New(env, res.size());
  for (size_t i = 0; i < res.size(); i++) out.Set(static_cast<uint32_t>(i), WrapOrNull(env, res[i]));
  return out;
}

Napi::Value GetGrad(const Napi::CallbackInfo& info) {
  return WrapOrNull(info.Env(), ToTensor(info[0], "grad").grad());
}

Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  at::Tensor t = ToTensor(info[0], "setGrad");
  if (info[1].IsNull() || info[1].IsUndefined()) t.mutable_grad() = at::Tensor();
  else t.mutable_grad() = ToTensor(info[1], "setGrad");
  return info.Env().Undefined();
}

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  at::Tensor t = ToTensor(info[0], "requiresGrad");
  t.set_requires_grad(info[1].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value GradEnabled(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsBoolean()) at::GradMode::set_enabled(info[0].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

// Mixed precision: the thread's autocast state, as torch.autocast sets it. With it on, the dispatcher's Autocast
// kernels cast the inputs of matmul/conv-class operators to the autocast dtype and keep the fp32 list in fp32, for
// every operator called through `op`/`call`; casts of weights are cached within the outermost region.
bool IsCudaDevice(const Napi::Value& v) {
  std::string device = v.As<Napi::String>().Utf8Value();
  if (device != "cpu" && device != "cuda") throw std::invalid_argument("autocast: device type must be cpu or cuda, got " + device);
  return device == "cuda";
}

// autocastState(deviceType, enabled?, dtype?) -> [enabled, dtype], after setting what is given.
Napi::Value AutocastState(const Napi::CallbackInfo& info) {
  bool cuda = IsCudaDevice(info[0]);
  if (info.Length() > 1 && info[1].IsBoolean()) {
    bool on = info[1].As<Napi::Boolean>().Value();
    if (cuda) at::autocast::set_enabled(on);
    else at::autocast::set_cpu_enabled(on);
  }
  if (info.Length() > 2 && info[2].IsNumber()) {
    auto dtype = static_cast<at::ScalarType>(ToInt(info[2], "dtype"));
    if (dtype != at::kBFloat16 && dtype != at::kHalf) throw std::invalid_argument("autocast: dtype must be bfloat16 or float16");
    if (cuda) at::autocast::set_autocast_gpu_dtype(dtype);
    else at::autocast::set_autocast_cpu_dtype(dtype);
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Boolean::New(info.Env(), cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled()));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype())));
  return out;
}

// autocastNesting(+1 | -1) -> depth; leaving the outermost region drops the cached weight casts.
Napi::Value AutocastNesting(const Napi::CallbackInfo& info) {
  if (ToInt(info[0], "delta") > 0) return Napi::Number::New(info.Env(), at::autocast::increment_nesting());
  int depth = at::autocast::decrement_nesting();
  if (depth == 0) at::autocast::clear_cache();
  return Napi::Number::New(info.Env(), depth);
}

// ---------------------------------------------------------------------------------------------------------------
// Random generators (CPU streams equal PyTorch's)
// ---------------------------------------------------------------------------------------------------------------

uint64_t ToSeed(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return static_cast<uint64_t>(ToInt(v, "seed"));
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  at::manual_seed(ToSeed(info[0]));
  return info.Env().Undefined();
}

Napi::Value NewGenerator(const Napi::CallbackInfo& info) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(ToSeed(info[0]));
  return GeneratorHandle::Wrap(g);
}

Napi::Value DefaultGenerator(const Napi::CallbackInfo& info) {
  return GeneratorHandle::Wrap(at::detail::getDefaultCPUGenerator());
}

at::Generator& ToGenerator(const Napi::Value& v) {
  if (!IsInstance(v, GeneratorHandle::ctor)) throw std::invalid_argument("expected a generator");
  return GeneratorHandle::Unwrap(v.As<Napi::Object>())->gen;
}

Napi::Value GeneratorSeed(const Napi::CallbackInfo& info) {
  at::Generator& g = ToGenerator(info[0]);
  std::lock_guard<std::mutex> lock(g.mutex());
  if (info.Length() > 1 && !info[1].IsUndefined()) g.set_current_seed(ToSeed(info[1]));
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(g.current_seed()));
}

Napi::Value GeneratorGetState(const Napi::CallbackInfo& info) {
  at::Generator& g = ToGenerator(info[0]);
  std::lock_guard<std::mutex> lock(g.mutex());
  return TensorHandle::Wrap(info.Env(), g.get_state());
}

Napi::Value GeneratorSetState(const Napi::CallbackInfo& info) {
  at::Generator& g = ToGenerator(info[0]);
  const at::Tensor& state = ToTensor(info[1], "generator state");
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------------------------------
// Runtime: threads, devices, version
// ---------------------------------------------------------------------------------------------------------------

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) {
    int n = static_cast<int>(ToInt(info[0], "threads"));
    if (n < 1) throw std::invalid_argument("threads must be >= 1, got " + std::to_string(n));
    at::set_num_threads(n);
  }
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::hasCUDA() ? static_cast<double>(at::getNumGPUs()) : 0.0);
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

Napi::Value ParallelInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), at::get_parallel_info());
}

// Interrupts. Long loops run synchronously, so Node's own signal events (dispatched by the event loop) would only
// arrive after the loop ends. Instead a plain signal handler counts SIGINT/SIGTERM and loops poll the count at safe
// points; a second signal terminates the process at once with the signal's default action.
std::atomic<int> g_signals{0};

void OnSignal(int sig) {
  if (g_signals.fetch_add(1) >= 1) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

Napi::Value WatchSignals(const Napi::CallbackInfo& info) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return info.Env().Undefined();
}

Napi::Value SignalsReceived(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_signals.load());
}

// Every entry point turns C++ exceptions (c10::Error carries libtorch's message) into JS Errors.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCpuAllocator();
  GeneratorHandle::Init(env, exports);
#define EXPORT(name, fn) exports.Set(name, Napi::Function::New<Guarded<fn>>(env, name))
  EXPORT("op", Op);
  EXPORT("call", Call);
  EXPORT("fromBuffer", FromBuffer);
  EXPORT("toBuffer", ToBuffer);
  EXPORT("meta", Meta);
  EXPORT("strides", Strides);
  EXPORT("item", Item);
  EXPORT("dispose", Dispose);
  EXPORT("isDisposed", IsDisposed);
  EXPORT("sameStorage", SameStorage);
  EXPORT("backward", Backward);
  EXPORT("grad", Grad);
  EXPORT("getGrad", GetGrad);
  EXPORT("setGrad", SetGrad);
  EXPORT("setRequiresGrad", SetRequiresGrad);
  EXPORT("gradEnabled", GradEnabled);
  EXPORT("autocastState", AutocastState);
  EXPORT("autocastNesting", AutocastNesting);
  EXPORT("manualSeed", ManualSeed);
  EXPORT("newGenerator", NewGenerator);
  EXPORT("defaultGenerator", DefaultGenerator);
  EXPORT("generatorSeed", GeneratorSeed);
  EXPORT("generatorGetState", GeneratorGetState);
  EXPORT("generatorSetState", GeneratorSetState);
  EXPORT("numThreads", NumThreads);
  EXPORT("cudaDeviceCount", CudaDeviceCount);
  EXPORT("version", Version);
  EXPORT("parallelInfo", ParallelInfo);
  EXPORT("watchSignals", WatchSignals);
  EXPORT("signalsReceived", SignalsReceived);
#undef EXPORT
  return exports;
}

}  // namespace

NODE_API_MODULE(cao2_torch, Init)
