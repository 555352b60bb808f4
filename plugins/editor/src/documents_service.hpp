// The "documents" service (vellum/services/documents_v1.h) over the store.
#pragma once

#include <vellum/services/documents_v1.h>

#include "store.hpp"

namespace vellum::editor {

class DocumentsService {
 public:
  explicit DocumentsService(Store& store);
  const vellum_documents_v1* vtable() const { return &vtable_; }

 private:
  Store& store_;
  vellum_documents_v1 vtable_{};
};

}  // namespace vellum::editor
