// A minimal, safe reader of Python pickles: the subset of protocols 2 to 5
// that torch.save uses for tensor state dicts. It never executes anything:
// GLOBAL names, persistent ids, REDUCE and BUILD are handed to the caller's
// hooks, which decide what (if anything) they stand for and refuse the rest.
//
// Values are plain data (None, bool, int, float, str, bytes, tuple, list,
// dict) plus two kinds the hooks create: Global (a class or function name
// the caller accepted) and Object (whatever the caller built from one).
// Anything unexpected (an unknown opcode, a malformed or truncated stream,
// nesting deeper than a state dict needs, a container changed after it was
// nested) is a gptneo::Error naming the byte offset.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gptneo::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Object };
  Kind kind = Kind::None;
  int64_t integer = 0;                                  // Bool, Int
  double number = 0;                                    // Float
  std::string text;                                     // String, Bytes, Global ("module.name")
  std::vector<ValuePtr> items;                          // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict, in insertion order
  std::any object;                                      // Object: whatever a hook made

  bool is(Kind k) const { return kind == k; }
  // A short description for error messages ("int 3", "str 'abc'", "tuple of 5").
  std::string describe() const;

  // Set by the reader: nesting depth, and whether it is inside another
  // container (then it may no longer change, which rules out cycles).
  int depth = 0;
  bool nested = false;
};

ValuePtr make_value(Value::Kind kind);
ValuePtr make_object(std::any object);

struct Hooks {
  // GLOBAL / STACK_GLOBAL "module.name": return the value it stands for
  // (usually a Global), or throw to refuse it.
  std::function<ValuePtr(const std::string& module, const std::string& name)> find_class;
  // BINPERSID: the object a persistent id refers to.
  std::function<ValuePtr(const ValuePtr& pid)> persistent_load;
  // REDUCE: callable(*args), `args` a tuple.
  std::function<ValuePtr(const ValuePtr& callable, const ValuePtr& args)> reduce;
  // BUILD: sets the state of `object` (in place).
  std::function<void(const ValuePtr& object, const ValuePtr& state)> build;
};

// Reads one pickle from `bytes`; `where` names it in errors. Hooks left
// empty refuse their opcodes.
ValuePtr unpickle(std::string_view bytes, const Hooks& hooks, const std::string& where);

}  // namespace gptneo::pickle
