//! Role-based access control: a role table with inheritance, policies, and the route layers that
//! enforce them.

mod layer;
mod policy;
mod roles;
mod table;

pub use layer::{
    Authorize, AuthorizeFuture, AuthorizeLayer, require_all, require_any, require_permission,
    require_role,
};
pub use policy::Policy;
pub use roles::{Rbac, RbacBuilder, Role};
pub use table::RouteTable;
