// The machinery of the tables that declare each family once (activations, losses, optimizers):
// a family is a std::tuple of entry structs, each holding a constexpr `info` (what the rest of
// the library reads about it) beside its kernels. An entry is known at run time by its index in
// the tuple; `visit` is the one dispatch from that index to the entry's kernels.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace denseprop {

// The index of Entry in the tuple List.
template <class Entry, class List> struct index_of;
template <class Entry, class... Rest> struct index_of<Entry, std::tuple<Entry, Rest...>> {
  static constexpr std::size_t value = 0;
};
template <class Entry, class First, class... Rest>
struct index_of<Entry, std::tuple<First, Rest...>> {
  static constexpr std::size_t value = 1 + index_of<Entry, std::tuple<Rest...>>::value;
};

// The infos of a family, in its order: the table the bindings and Python read.
template <class Info, class... Entries>
constexpr std::array<Info, sizeof...(Entries)> infos_of(std::tuple<Entries...>*) {
  return {Entries::info...};
}

// f(Entry{}) for the entry at index `id` of List.
template <class List, class F, std::size_t... I>
void visit_entry(std::size_t id, F& f, std::index_sequence<I...>) {
  (void)((id == I ? (f(std::tuple_element_t<I, List>{}), true) : false) || ...);
}
template <class List, class F> void visit(std::size_t id, F&& f) {
  visit_entry<List>(id, f, std::make_index_sequence<std::tuple_size_v<List>>{});
}

// What an info struct of a table derives from, so that its entries set each property by name:
// `with(&Info::field, value)` is a copy of the info with that field set (each builder method of
// the info is one such call).
template <class Info> struct Builder {
  template <class Field, class Value> constexpr Info with(Field Info::* field, Value value) const {
    Info e = static_cast<const Info&>(*this);
    e.*field = value;
    return e;
  }
};

// A number in a message as Python prints it: the shortest digits that read back the same, with
// ".0" on a whole number (1.0, 1e-08, nan, inf).
inline std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// "a, b, c": the names of a table, for messages.
template <class Table> std::string names_of(const Table& table) {
  std::string s;
  for (const auto& e : table) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

// The index of `name` in `table`; an unknown name is refused, naming `what` and the choices.
template <class Table>
std::size_t find_entry(const Table& table, std::string_view name, const char* what) {
  for (std::size_t i = 0; i < table.size(); ++i)
    if (table[i].name == name) return i;
  throw std::invalid_argument(std::string(what) + ": unknown '" + std::string(name) +
                              "', expected one of " + names_of(table));
}

}  // namespace denseprop
