#include "io/pickle.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "gptneo/error.h"
#include "gptneo/tokenizer.h"

namespace gptneo::pickle {

namespace {

// Tensor state dicts nest a few levels (dict -> tuple -> tuple); this bound
// keeps hostile input from building structures whose destruction recurses deeply.
constexpr int kMaxDepth = 32;
// GLOBAL's module and name lines.
constexpr size_t kMaxGlobalLine = 256;

// Opcodes (Lib/pickletools.py). Only those torch.save can write are read.
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BINFLOAT = 'G', BININT = 'J',
  BININT1 = 'K', BININT2 = 'M', NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINUNICODE = 'X',
  BINBYTES = 'B', SHORT_BINBYTES = 'C', EMPTY_LIST = ']', APPEND = 'a', BUILD = 'b', GLOBAL = 'c',
  APPENDS = 'e', BINGET = 'h', LONG_BINGET = 'j', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's',
  TUPLE = 't', SETITEMS = 'u', EMPTY_DICT = '}', EMPTY_TUPLE = ')', PROTO = 0x80, TUPLE1 = 0x85,
  TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
};

class Machine {
 public:
  Machine(std::string_view bytes, const Hooks& hooks, const std::string& where)
      : in_(bytes), hooks_(hooks), where_(where) {}

  ValuePtr run() {
    while (true) {
      op_at_ = pos_;
      const uint8_t op = u8();
      if (op == STOP) {
        if (stack_.size() != 1 || !marks_.empty()) fail("the pickle ends with an unbalanced stack");
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  void step(uint8_t op) {
    switch (op) {
      case PROTO:
        if (const uint8_t v = u8(); v < 2 || v > 5) fail(fmt::format("unsupported pickle protocol {}", v));
        break;
      case FRAME: take(8); break;  // framing is only a hint for buffered readers
      case MARK: marks_.push_back(stack_.size()); break;
      case POP: pop(); break;
      case POP_MARK: pop_mark(); break;
      case DUP: push(top()); break;
      case NONE: push(make_value(Value::Kind::None)); break;
      case NEWTRUE: push(boolean(true)); break;
      case NEWFALSE: push(boolean(false)); break;
      case BININT1: push(integer(u8())); break;
      case BININT2: push(integer(uint(2))); break;
      case BININT: push(integer(static_cast<int32_t>(static_cast<uint32_t>(uint(4))))); break;
      case LONG1: push(integer(long1())); break;
      case BINFLOAT: push(float64()); break;
      case SHORT_BINUNICODE: push(string(uint(1), Value::Kind::String)); break;
      case BINUNICODE: push(string(uint(4), Value::Kind::String)); break;
      case BINUNICODE8: push(string(uint(8), Value::Kind::String)); break;
      case SHORT_BINBYTES: push(string(uint(1), Value::Kind::Bytes)); break;
      case BINBYTES: push(string(uint(4), Value::Kind::Bytes)); break;
      case EMPTY_TUPLE: push(make_value(Value::Kind::Tuple)); break;
      case TUPLE1: case TUPLE2: case TUPLE3: push(tuple(pop_n(op - TUPLE1 + 1))); break;
      case TUPLE: push(tuple(pop_mark())); break;
      case EMPTY_LIST: push(make_value(Value::Kind::List)); break;
      case APPEND: { ValuePtr v = pop(); append(top(), {v}); break; }
      case APPENDS: { auto items = pop_mark(); append(top(), items); break; }
      case EMPTY_DICT: push(make_value(Value::Kind::Dict)); break;
      case SETITEM: { auto kv = pop_n(2); set_items(top(), kv); break; }
      case SETITEMS: { auto kv = pop_mark(); set_items(top(), kv); break; }
      case BINPUT: memo_put(uint(1)); break;
      case LONG_BINPUT: memo_put(uint(4)); break;
      case MEMOIZE: memo_put(memo_.size()); break;
      case BINGET: push(memo_get(uint(1))); break;
      case LONG_BINGET: push(memo_get(uint(4))); break;
      case GLOBAL: {
        const std::string module = line(), name = line();
        push(find_class(module, name));
        break;
      }
      case STACK_GLOBAL: {
        const ValuePtr name = pop(), module = pop();
        if (!module->is(Value::Kind::String) || !name->is(Value::Kind::String))
          fail("STACK_GLOBAL needs two strings");
        push(find_class(module->text, name->text));
        break;
      }
      case BINPERSID: {
        if (!hooks_.persistent_load) fail("persistent ids are not allowed here");
        push(checked(hooks_.persistent_load(pop())));
        break;
      }
      case REDUCE: {
        const ValuePtr args = pop(), callable = pop();
        if (!args->is(Value::Kind::Tuple)) fail(fmt::format("REDUCE arguments are a {}, not a tuple", args->describe()));
        if (!hooks_.reduce) fail("REDUCE is not allowed here");
        push(checked(hooks_.reduce(callable, args)));
        break;
      }
      case BUILD: {
        const ValuePtr state = pop();
        if (!hooks_.build) fail("BUILD is not allowed here");
        if (top()->nested) fail("BUILD changes an object after it was nested");
        hooks_.build(top(), state);
        break;
      }
      default:
        fail(fmt::format("unsupported pickle opcode 0x{:02x} ('{}'): not something torch.save writes for a "
                         "tensor state dict",
                         op, op >= 0x20 && op < 0x7f ? std::string(1, static_cast<char>(op)) : std::string("?")));
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("{}: byte {}: {}", where_, op_at_, what));
  }

  // ---- reading the stream ----
  std::string_view take(uint64_t n) {
    if (n > in_.size() - pos_) fail("the pickle is truncated");
    const std::string_view s = in_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint64_t uint(int bytes) {
    const std::string_view s = take(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[static_cast<size_t>(i)]);
    return v;
  }
  int64_t long1() {
    const uint8_t n = u8();
    if (n > 8) fail(fmt::format("integer of {} bytes is too large", n));
    const std::string_view s = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[static_cast<size_t>(i)]);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(s[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  ValuePtr float64() {
    const uint64_t big = uint(8);  // stored big-endian: undo the little-endian read
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | ((big >> (8 * i)) & 0xff);
    ValuePtr v = make_value(Value::Kind::Float);
    std::memcpy(&v->number, &bits, 8);
    return v;
  }
  ValuePtr string(uint64_t n, Value::Kind kind) {
    ValuePtr v = make_value(kind);
    v->text = std::string(take(n));
    if (kind == Value::Kind::String && utf8_first_invalid(v->text)) fail("a string is not valid UTF-8");
    return v;
  }
  std::string line() {
    const size_t end = in_.find('\n', pos_);
    if (end == std::string_view::npos || end - pos_ > kMaxGlobalLine) fail("malformed GLOBAL name");
    std::string s(in_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  // ---- the stack ----
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr& top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  ValuePtr pop() {
    ValuePtr v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_n(size_t n) {
    if (stack_.size() < floor() + n) fail("stack underflow");
    std::vector<ValuePtr> out(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return out;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  // Values below the innermost mark belong to an enclosing construct.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  // ---- memo ----
  void memo_put(uint64_t index) { memo_[index] = top(); }
  ValuePtr memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail(fmt::format("memo entry {} was never stored", index));
    return it->second;
  }

  // ---- values ----
  static ValuePtr boolean(bool b) {
    ValuePtr v = make_value(Value::Kind::Bool);
    v->integer = b;
    return v;
  }
  static ValuePtr integer(int64_t i) {
    ValuePtr v = make_value(Value::Kind::Int);
    v->integer = i;
    return v;
  }
  // Records that `child` now lives inside `parent`.
  void adopt(Value& parent, const ValuePtr& child) {
    child->nested = true;
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxDepth) fail(fmt::format("values nest more than {} levels deep", kMaxDepth));
  }
  ValuePtr tuple(std::vector<ValuePtr> items) {
    ValuePtr t = make_value(Value::Kind::Tuple);
    for (const auto& i : items) adopt(*t, i);
    t->items = std::move(items);
    return t;
  }
  void append(const ValuePtr& list, const std::vector<ValuePtr>& items) {
    if (!list->is(Value::Kind::List)) fail(fmt::format("APPEND to a {}", list->describe()));
    if (list->nested) fail("a list is changed after it was nested");
    for (const auto& i : items) {
      adopt(*list, i);
      list->items.push_back(i);
    }
  }
  void set_items(const ValuePtr& dict, const std::vector<ValuePtr>& kv) {
    if (!dict->is(Value::Kind::Dict)) fail(fmt::format("SETITEM on a {}", dict->describe()));
    if (dict->nested) fail("a dict is changed after it was nested");
    if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of values");
    for (size_t i = 0; i < kv.size(); i += 2) {
      adopt(*dict, kv[i]);
      adopt(*dict, kv[i + 1]);
      dict->entries.emplace_back(kv[i], kv[i + 1]);
    }
  }
  ValuePtr find_class(const std::string& module, const std::string& name) {
    if (!hooks_.find_class) fail(fmt::format("the pickle names the global '{}.{}'; none is allowed here", module, name));
    return checked(hooks_.find_class(module, name));
  }
  ValuePtr checked(ValuePtr v) const {
    if (!v) fail("a hook returned nothing");
    return v;
  }

  std::string_view in_;
  const Hooks& hooks_;
  const std::string& where_;
  size_t pos_ = 0, op_at_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

}  // namespace

ValuePtr make_value(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

ValuePtr make_object(std::any object) {
  ValuePtr v = make_value(Value::Kind::Object);
  v->object = std::move(object);
  return v;
}

std::string Value::describe() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return integer ? "True" : "False";
    case Kind::Int: return fmt::format("int {}", integer);
    case Kind::Float: return fmt::format("float {}", number);
    case Kind::String: return fmt::format("str '{}'", text.size() > 60 ? text.substr(0, 60) + "..." : text);
    case Kind::Bytes: return fmt::format("bytes of length {}", text.size());
    case Kind::Tuple: return fmt::format("tuple of {}", items.size());
    case Kind::List: return fmt::format("list of {}", items.size());
    case Kind::Dict: return fmt::format("dict of {}", entries.size());
    case Kind::Global: return fmt::format("global {}", text);
    case Kind::Object: return "object";
  }
  return "value";
}

ValuePtr unpickle(std::string_view bytes, const Hooks& hooks, const std::string& where) {
  return Machine(bytes, hooks, where).run();
}

}  // namespace gptneo::pickle
