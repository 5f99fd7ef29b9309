// SPDX-License-Identifier: MIT
// Product Actions (§2): QueryProduct, QueryProductList.
#include "sim/cloud_actions.hpp"

namespace iot::sim::cloud {

Reply query_product(ActionContext& ctx) {
  const ProductRow& p = ctx.product();
  const std::int64_t count =
      ctx.read([&](Conn& c) { return CloudStore::counts(c, p.product_key).total(); });
  json data;
  data["ProductKey"] = p.product_key;
  data["ProductName"] = p.name;
  data["ProductSecret"] = p.secret;
  data["DeviceCount"] = count;
  data["NodeType"] = p.node_type;
  data["DataFormat"] = p.data_format;
  data["AuthType"] = p.auth_type;
  data["Id2"] = p.auth_type == "id2";
  data["NetType"] = p.net_type;
  data["ProductStatus"] = "RELEASE_STATUS";
  data["AliyunCommodityCode"] = p.commodity;
  data["ValidateType"] = 1; // a number in the SDK's model; 1 = weak validation (UNVERIFIED value)
  data["ProtocolType"] = "";
  data["CategoryKey"] = "";
  data["CategoryName"] = "";
  data["Owner"] = true;
  data["GmtCreate"] = p.created_ms;
  data["Description"] = p.description;
  return ok(json{{"Data", std::move(data)}});
}

Reply query_product_list(ActionContext& ctx) {
  (void)ctx.required("CurrentPage");
  (void)ctx.required("PageSize");
  const std::int64_t current = ctx.page_param("CurrentPage", 1, 1, 1'000'000'000);
  const std::int64_t page_size = ctx.page_param("PageSize", 10, 1, 200);
  const std::string commodity = ctx.param("AliyunCommodityCode").value_or("");
  std::vector<const ProductRow*> matching;
  if (ctx.instance_matches()) {
    for (const ProductRow& p : ctx.store().products()) {
      if (commodity.empty() || p.commodity == commodity) {
        matching.push_back(&p);
      }
    }
  }
  const auto total = static_cast<std::int64_t>(matching.size());
  const std::int64_t first = (current - 1) * page_size;
  std::vector<const ProductRow*> page;
  for (std::int64_t i = first; i < total && i < first + page_size; ++i) {
    page.push_back(matching[static_cast<std::size_t>(i)]);
  }
  const std::vector<std::int64_t> counts = ctx.read([&](Conn& c) {
    std::vector<std::int64_t> out;
    for (const ProductRow* p : page) {
      out.push_back(CloudStore::counts(c, p->product_key).total());
    }
    return out;
  });
  json list = json::array();
  for (std::size_t i = 0; i < page.size(); ++i) {
    const ProductRow& p = *page[i];
    json j;
    j["ProductKey"] = p.product_key;
    j["ProductName"] = p.name;
    j["DeviceCount"] = counts[i];
    j["NodeType"] = p.node_type;
    j["DataFormat"] = p.data_format;
    j["AuthType"] = p.auth_type;
    j["GmtCreate"] = p.created_ms;
    j["Description"] = p.description;
    list.push_back(std::move(j));
  }
  json data;
  data["CurrentPage"] = current;
  data["PageCount"] = (total + page_size - 1) / page_size;
  data["PageSize"] = page_size;
  data["Total"] = total;
  data["List"] = json{{"ProductInfo", std::move(list)}};
  return ok(json{{"Data", std::move(data)}});
}

} // namespace iot::sim::cloud
